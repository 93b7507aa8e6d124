/**
 * Key health as every provider reports it: the status of each key a probe looked at, and the
 * organization's status summarized from them. Provider-neutral; an adapter may probe its keys its
 * own way (the port's optional `probeKeys`), the summary is the same for all.
 */

export type HealthStatus = 'ok' | 'degraded' | 'failed';
/** The error body of a probe that was not ok: the shape of the key configuration's lastError. */
export interface HealthError {
  message: string;
  code: string;
  errorType?: string;
  /** The AWS exception name (or network error code) KMS answered with, when a call failed. */
  awsError?: string;
  /** The provider's own error name (an XKS errorName, a network code), for keys outside AWS KMS. */
  providerError?: string;
  /** The key the error is about, when it is not the configuration's current key. */
  keyArn?: string;
}

/** One key the probe looked at (a KMS key ARN, an XKS key reference). */
export interface KeyHealth {
  keyArn: string;
  /** The key the configuration's alias resolves to (new data is protected with it). */
  current: boolean;
  /**
   * The key's state as its provider told it (KMS KeyState: Enabled, Disabled, PendingDeletion, …),
   * or `Unknown` when it could not say (denied by the key policy, throttled, unreachable).
   */
  state: string;
  status: HealthStatus;
  /** ISO 8601, when the key is pending deletion. */
  deletionDate?: string;
  /** Live org data keys it wraps (0 for a current key that protects nothing yet). */
  dataKeys: number;
  error?: HealthError;
}

export interface ProbeResult {
  status: HealthStatus;
  lastError?: HealthError;
  /** Earliest deletion date (ms) among the keys that matter, when one is pending deletion. */
  deletionDate?: number;
  keys: KeyHealth[];
  /** The key the configuration resolved to (an alias's key ARN), when the probe could tell. */
  currentKeyArn?: string;
}

/** A key (KMS key ARN, XKS key reference) that wraps live org data keys of the organization. */
export interface ProtectedKey {
  keyArn: string;
  dataKeys: number;
}

/** What a provider's own probe gets from key health. */
export interface KeyProbeInput {
  orgId: string;
  /** The key the configuration last resolved to (used when it cannot be resolved now). */
  lastKnownKeyArn: string | null;
  /** Keys that wrap live data keys of the org (the platform key left out). */
  protectedKeys: readonly ProtectedKey[];
  /** One live data key wrapped by `keyArn`: what a probe may unwrap when describing is denied. */
  sampleDataKey(keyArn: string): Promise<{ wrappedKey: Buffer; contextKey: string } | undefined>;
}

/**
 * Failures the customer cannot fix and that pass by themselves: `degraded`. Every other
 * failure (denied, not found, disabled, pending deletion, invalid) is an answer about the key: `failed`.
 */
const TRANSIENT: ReadonlySet<string> = new Set<string>(['Throttled', 'Unreachable', 'Unavailable', 'Internal']);

/** The status a failure gives a key: `kind` is a provider-neutral kind (or an adapter's own, e.g. KMS's `Unreachable`). */
export function statusForFailure(kind: string): HealthStatus {
  return TRANSIENT.has(kind) ? 'degraded' : 'failed';
}

const RANK: Record<HealthStatus, number> = { ok: 0, degraded: 1, failed: 2 };

/**
 * The organization's status from the status of each key: the worst one, with the first error of
 * that status. Probes, a passing Save and real traffic all go through it, so they cannot disagree.
 */
export function summarizeKeys(keys: KeyHealth[]): ProbeResult {
  const status = keys.reduce<HealthStatus>((worst, k) => (RANK[k.status] > RANK[worst] ? k.status : worst), 'ok');
  const lastError = status === 'ok' ? undefined : keys.find((k) => k.status === status && k.error)?.error;
  const deletionDates = keys.map((k) => (k.deletionDate ? Date.parse(k.deletionDate) : NaN)).filter((d) => Number.isFinite(d));
  return {
    status,
    ...(lastError ? { lastError } : {}),
    ...(deletionDates.length ? { deletionDate: Math.min(...deletionDates) } : {}),
    keys,
  };
}

/** Runs `fn` over `items`, at most `limit` at a time, keeping the order of the results. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
