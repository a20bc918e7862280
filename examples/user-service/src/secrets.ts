// Secrets arrive as files in a mounted Kubernetes Secret volume. Only names ever reach logs or
// responses; values stay in this module's map.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from './logger.js';

// A Secret value is at most 1 MiB in Kubernetes; ours are tokens, so anything large is a mistake.
const MAX_SECRET_BYTES = 64 * 1024;

export class SecretStore {
  private values = new Map<string, string>();

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /** Re-reads the directory; Kubernetes updates mounted Secrets in place without a restart. */
  load(): void {
    const next = new Map<string, string>();
    let entries: string[];
    try {
      entries = readdirSync(this.dir);
    } catch (err) {
      this.logger.debug('secrets directory not readable', { dir: this.dir, code: (err as NodeJS.ErrnoException).code });
      this.values = next;
      return;
    }
    for (const name of entries) {
      // Kubernetes' own entries ("..data", "..<timestamp>", "..data_tmp") start with two dots,
      // which Secret keys cannot; a key like ".dockerconfigjson" is a real secret.
      if (name.startsWith('..')) {
        continue;
      }
      const path = join(this.dir, name);
      try {
        const info = statSync(path);
        if (!info.isFile()) {
          continue;
        }
        if (info.size > MAX_SECRET_BYTES) {
          this.logger.warn('secret file ignored: too large', { secret: name, max_bytes: MAX_SECRET_BYTES });
          continue;
        }
        // Files made with `kubectl create secret --from-file` often end in a newline that is not part of the value.
        const value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
        if (value !== '') {
          next.set(name, value);
        }
      } catch (err) {
        this.logger.warn('secret file not readable', { secret: name, code: (err as NodeJS.ErrnoException).code });
      }
    }
    this.values = next;
  }

  get(name: string): string | undefined {
    return this.values.get(name);
  }

  names(): string[] {
    return [...this.values.keys()].sort();
  }

  missing(required: readonly string[]): string[] {
    return required.filter((name) => !this.values.has(name));
  }
}
