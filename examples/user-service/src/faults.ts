// Fault injection lets the release tooling be tested against releases that are bad in known ways.
// Error injection is deterministic (an evenly spread share, not random draws) so a test or a
// canary analysis sees exactly the configured error ratio even with few requests.
import type { FaultConfig } from './config.js';

export type Clock = () => number;

export class FaultInjector {
  private errorCredit = 0;

  constructor(
    private readonly faults: FaultConfig,
    private readonly startedAtMs: number,
    private readonly now: Clock = Date.now,
  ) {}

  private elapsedSeconds(): number {
    return (this.now() - this.startedAtMs) / 1000;
  }

  /** False while FAULT_FAIL_AFTER_SECONDS has not elapsed yet. */
  private armed(): boolean {
    return this.faults.failAfterSeconds === null || this.elapsedSeconds() >= this.faults.failAfterSeconds;
  }

  healthFailing(): boolean {
    return this.faults.healthFail && this.armed();
  }

  /** The variable that keeps the service from being ready, or null. */
  readinessBlocker(): string | null {
    if (this.faults.readyFail) {
      return 'FAULT_READY_FAIL';
    }
    if (this.elapsedSeconds() < this.faults.startDelaySeconds) {
      return 'FAULT_START_DELAY_SECONDS';
    }
    return null;
  }

  addedLatencyMs(): number {
    return this.armed() ? this.faults.latencyMs : 0;
  }

  /** The status to answer instead of handling the request, or null to handle it normally. */
  injectedErrorStatus(): number | null {
    if (this.faults.errorRate <= 0 || !this.armed()) {
      return null;
    }
    this.errorCredit += this.faults.errorRate;
    // The epsilon absorbs float drift, so a rate of 0.1 fails exactly every tenth request.
    if (this.errorCredit >= 1 - 1e-9) {
      this.errorCredit -= 1;
      return this.faults.errorStatus;
    }
    return null;
  }

  /** Active faults by variable name, for the start-up log. */
  describe(): Record<string, string | number | boolean> {
    const active: Record<string, string | number | boolean> = {};
    const f = this.faults;
    if (f.healthFail) active.FAULT_HEALTH_FAIL = true;
    if (f.readyFail) active.FAULT_READY_FAIL = true;
    if (f.errorRate > 0) {
      active.FAULT_ERROR_RATE = f.errorRate;
      active.FAULT_ERROR_STATUS = f.errorStatus;
    }
    if (f.latencyMs > 0) active.FAULT_LATENCY_MS = f.latencyMs;
    if (f.startDelaySeconds > 0) active.FAULT_START_DELAY_SECONDS = f.startDelaySeconds;
    if (f.failAfterSeconds !== null) active.FAULT_FAIL_AFTER_SECONDS = f.failAfterSeconds;
    return active;
  }
}
