/**
 * Fails fast while KMS is unreachable, so requests do not pile up behind timeouts. Only
 * "unreachable" failures count: a denied or disabled key is an answer, not an outage.
 */
export interface CircuitBreakerOptions {
  /** Consecutive unreachable failures that open the circuit. */
  failureThreshold: number;
  /** How long it stays open before one trial call is let through. */
  openMs: number;
  now: () => number;
}

export type CircuitState = 'closed' | 'open' | 'half-open';

export function createCircuitBreaker({ failureThreshold, openMs, now }: CircuitBreakerOptions) {
  let failures = 0;
  let openedAt = 0;
  let state: CircuitState = 'closed';
  let trialInFlight = false;

  return {
    /** Whether a call may go out now; in half-open only one trial at a time. */
    allow(): boolean {
      if (state === 'open' && now() - openedAt >= openMs) state = 'half-open';
      if (state === 'closed') return true;
      if (state === 'half-open' && !trialInFlight) {
        trialInFlight = true;
        return true;
      }
      return false;
    },
    onUnreachable(): void {
      trialInFlight = false;
      failures++;
      if (state === 'half-open' || failures >= failureThreshold) {
        state = 'open';
        openedAt = now();
      }
    },
    /** Any answer from KMS, an error included, proves it is reachable. */
    onReachable(): void {
      failures = 0;
      state = 'closed';
      trialInFlight = false;
    },
    get state(): CircuitState {
      if (state === 'open' && now() - openedAt >= openMs) return 'half-open';
      return state;
    },
  };
}

export type CircuitBreaker = ReturnType<typeof createCircuitBreaker>;
