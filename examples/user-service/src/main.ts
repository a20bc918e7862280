// Entry point: validate configuration, start the server, and turn SIGTERM/SIGINT into a
// graceful shutdown that exits 0, which is what Kubernetes expects of a terminating pod.
import { ConfigError, loadConfig, type Config } from './config.js';
import { createLogger, errorFields } from './logger.js';
import { UserServiceServer } from './server.js';

/** Exit status for configuration errors, distinct from a crash (1). */
export const EXIT_CONFIG = 2;

function readConfig(): Config {
  try {
    return loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      createLogger('error', { service: 'user-service' }).error('invalid configuration', { problems: err.problems });
      process.stderr.write(`user-service: invalid configuration:\n${err.problems.map((p) => `  - ${p}\n`).join('')}`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  const logger = createLogger(config.logLevel, { service: 'user-service', version: config.version });
  const service = new UserServiceServer(config, logger);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.warn('second signal, closing connections now', { signal });
      service.forceClose();
      return;
    }
    service
      .shutdown(signal)
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error('shutdown failed', errorFields(err));
        process.exit(1);
      });
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  try {
    await service.listen();
  } catch (err) {
    logger.error('could not start listening', { ...errorFields(err), host: config.host, port: config.port });
    process.exit(1);
  }
}

void main();
