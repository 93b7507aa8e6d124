/**
 * Faults for tests and demos, all off by default and switchable at run time: latency per operation,
 * a throttling ratio (ThrottlingException), and a full outage — 503 for every request, or the
 * listener closed so connections are refused.
 *
 * Throttling is deterministic rather than random: with ratio r, exactly ⌊n·r⌋ of the first n
 * eligible requests are throttled, evenly spread (r = 0.5 → every second one), so tests can count.
 */

export type OutageMode = 'none' | 'unavailable' | 'refused';

export interface FaultSettings {
  /** Milliseconds added before an operation runs; key = operation name, `*` = every other operation. */
  latencyMs: Record<string, number>;
  throttle: { ratio: number; operations?: string[] };
  outage: OutageMode;
}

export interface FaultPatch {
  latencyMs?: Record<string, number>;
  throttle?: { ratio: number; operations?: string[] };
  outage?: OutageMode;
  /** With an outage: end it by itself after this many ms (the only way out of `refused` over HTTP). */
  outageForMs?: number;
}

export class FaultSettingsError extends Error {}

/**
 * Holds every request of one operation until released, so a test decides exactly when a KMS call
 * answers instead of betting on a latency window.
 */
export class FaultGate {
  private entered = 0;
  private readonly arrivals: Array<{ n: number; resolve: () => void }> = [];
  private open!: () => void;
  private readonly opened = new Promise<void>((resolve) => (this.open = resolve));

  constructor(
    readonly operation: string,
    private readonly onRelease: (gate: FaultGate) => void,
  ) {}

  /** Requests that reached the gate so far (held, or let through after the release). */
  get arrived(): number {
    return this.entered;
  }

  /** Resolves once `n` requests have reached the gate. */
  waitFor(n = 1): Promise<void> {
    if (this.entered >= n) return Promise.resolve();
    return new Promise((resolve) => this.arrivals.push({ n, resolve }));
  }

  /** Lets the held requests and every later one through; the gate is gone afterwards. */
  release(): void {
    this.onRelease(this);
    this.open();
  }

  async pass(): Promise<void> {
    this.entered++;
    for (const a of this.arrivals.filter((a) => a.n <= this.entered)) {
      this.arrivals.splice(this.arrivals.indexOf(a), 1);
      a.resolve();
    }
    await this.opened;
  }
}

const OPERATION = /^(\*|[A-Z][A-Za-z]+)$/;

export class FaultController {
  private settings: FaultSettings = defaults();
  private eligible = 0;
  private outageTimer: NodeJS.Timeout | undefined;
  private readonly outageListeners = new Set<(mode: OutageMode) => Promise<void> | void>();
  private pending: Promise<unknown> = Promise.resolve();
  private readonly gates = new Map<string, FaultGate>();

  get(): FaultSettings {
    return structuredClone(this.settings);
  }

  /** Applies the fields given, leaving the others as they are. Throws FaultSettingsError on bad values. */
  set(patch: FaultPatch): FaultSettings {
    const next = this.get();
    if (patch.latencyMs !== undefined) next.latencyMs = validLatency(patch.latencyMs);
    if (patch.throttle !== undefined) {
      next.throttle = validThrottle(patch.throttle);
      this.eligible = 0;
    }
    if (patch.outage !== undefined && !['none', 'unavailable', 'refused'].includes(patch.outage)) {
      throw new FaultSettingsError('outage must be "none", "unavailable" or "refused"');
    }
    if (patch.outageForMs !== undefined && !(Number.isInteger(patch.outageForMs) && patch.outageForMs > 0)) {
      throw new FaultSettingsError('outageForMs must be a positive integer');
    }
    if (patch.outage !== undefined) next.outage = patch.outage;
    const outageChanged = next.outage !== this.settings.outage;
    this.settings = next;
    if (patch.outage !== undefined || patch.outageForMs !== undefined) this.scheduleOutageEnd(patch.outageForMs);
    if (outageChanged) {
      const results = [...this.outageListeners].map((listener) => listener(next.outage));
      this.pending = Promise.all([this.pending, ...results]);
    }
    return this.get();
  }

  reset(): FaultSettings {
    for (const gate of [...this.gates.values()]) gate.release();
    return this.set({ latencyMs: {}, throttle: { ratio: 0 }, outage: 'none' });
  }

  /** Holds requests of `operation` (after authentication, before they run) until the gate is released. */
  hold(operation: string): FaultGate {
    if (!OPERATION.test(operation) || operation === '*') throw new FaultSettingsError(`${operation} is not an operation name`);
    if (this.gates.has(operation)) throw new FaultSettingsError(`${operation} is already held`);
    const gate = new FaultGate(operation, (g) => {
      if (this.gates.get(operation) === g) this.gates.delete(operation);
    });
    this.gates.set(operation, gate);
    return gate;
  }

  /** Waits at the operation's gate, if one is set. */
  async passGate(operation: string): Promise<void> {
    await this.gates.get(operation)?.pass();
  }

  latencyFor(operation: string): number {
    return this.settings.latencyMs[operation] ?? this.settings.latencyMs['*'] ?? 0;
  }

  /** Counts the request and says whether this one is throttled. */
  shouldThrottle(operation: string): boolean {
    const { ratio, operations } = this.settings.throttle;
    if (ratio <= 0 || (operations && !operations.includes(operation))) return false;
    const n = this.eligible++;
    return Math.floor((n + 1) * ratio) > Math.floor(n * ratio);
  }

  get outage(): OutageMode {
    return this.settings.outage;
  }

  /**
   * Resolves once the last change has taken effect. Switching to or from `refused` closes or reopens
   * the listener asynchronously; await this before the next request.
   */
  async settled(): Promise<void> {
    await this.pending;
  }

  /** The server listens so that `refused` can close and reopen its listener. */
  onOutageChange(listener: (mode: OutageMode) => Promise<void> | void): () => void {
    this.outageListeners.add(listener);
    return () => this.outageListeners.delete(listener);
  }

  dispose(): void {
    for (const gate of [...this.gates.values()]) gate.release();
    clearTimeout(this.outageTimer);
    this.outageListeners.clear();
  }

  private scheduleOutageEnd(forMs: number | undefined): void {
    clearTimeout(this.outageTimer);
    this.outageTimer = undefined;
    if (forMs === undefined || this.settings.outage === 'none') return;
    this.outageTimer = setTimeout(() => this.set({ outage: 'none' }), forMs);
    this.outageTimer.unref();
  }
}

function defaults(): FaultSettings {
  return { latencyMs: {}, throttle: { ratio: 0 }, outage: 'none' };
}

function validLatency(latency: Record<string, number>): Record<string, number> {
  if (typeof latency !== 'object' || latency === null || Array.isArray(latency)) {
    throw new FaultSettingsError('latencyMs must be an object of operation name → milliseconds');
  }
  for (const [op, ms] of Object.entries(latency)) {
    if (!OPERATION.test(op)) throw new FaultSettingsError(`latencyMs: ${op} is not an operation name or "*"`);
    if (!(Number.isInteger(ms) && ms >= 0 && ms <= 600_000)) throw new FaultSettingsError(`latencyMs.${op} must be an integer 0-600000`);
  }
  return { ...latency };
}

function validThrottle(throttle: { ratio: number; operations?: string[] }): FaultSettings['throttle'] {
  if (typeof throttle !== 'object' || throttle === null || typeof throttle.ratio !== 'number' || !(throttle.ratio >= 0 && throttle.ratio <= 1)) {
    throw new FaultSettingsError('throttle.ratio must be a number between 0 and 1');
  }
  if (throttle.operations !== undefined) {
    if (!Array.isArray(throttle.operations) || throttle.operations.some((op) => typeof op !== 'string' || !OPERATION.test(op) || op === '*')) {
      throw new FaultSettingsError('throttle.operations must be an array of operation names');
    }
    return { ratio: throttle.ratio, operations: [...throttle.operations] };
  }
  return { ratio: throttle.ratio };
}
