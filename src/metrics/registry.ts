import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { CacheObserver } from '../crypto/index.js';

/**
 * The Prometheus metrics of one convault process (docs/OPERATIONS.md lists them). Labels are
 * bounded on purpose: route templates (never raw URLs), operation names, outcomes and error
 * types. Conversation ids, tokens and key ARNs are never labels; the organization id is one only
 * when the operator asks for it (CONVAULT_METRICS_ORG_LABEL), on the per-operation counter.
 */

export type CacheName = 'data_keys' | 'conversation_keys' | 'configurations';

/** What the scrape reads from the database: aggregates across organizations, never one org's data. */
export interface ScrapeSources {
  rewrapJobs(): Promise<{ running: number; queued: number; done: number; total: number }>;
  keyHealth(): Promise<Record<string, number>>;
  webhookOutbox?(): Promise<{ pending: number; failed: number; oldestPendingAgeSeconds: number }>;
  pool?(): { total: number; idle: number; waiting: number } | undefined;
  /** Seconds since the oldest unsealed audit event was appended (the sealer's lag). */
  auditSealLag?(): Promise<number>;
  /** SQLite's WAL checkpoints (absent on PostgreSQL). */
  checkpoints?(): { mode: 'background' | 'inline'; runs: number; framesCheckpointed: number; restarts: number };
}

export interface MetricsOptions {
  /** Adds an `org` label to convault_operations_total (one series per organization: only if asked). */
  orgLabel?: boolean;
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export type ConvaultMetrics = ReturnType<typeof createConvaultMetrics>;

export function createConvaultMetrics(options: MetricsOptions = {}) {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const httpRequests = new Counter({
    name: 'convault_http_requests_total',
    help: 'HTTP requests by route template, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers,
  });
  const httpDuration = new Histogram({
    name: 'convault_http_request_duration_seconds',
    help: 'Latency of HTTP requests by route template and method',
    labelNames: ['route', 'method'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const kmsCalls = new Counter({
    name: 'convault_kms_calls_total',
    help: 'KMS calls by provider, operation and outcome (ok or the AWS error name)',
    labelNames: ['provider', 'operation', 'outcome'] as const,
    registers,
  });
  const kmsDuration = new Histogram({
    name: 'convault_kms_call_duration_seconds',
    help: 'Latency of KMS calls by provider and operation',
    labelNames: ['provider', 'operation'] as const,
    buckets: LATENCY_BUCKETS,
    registers,
  });
  const cacheHits = new Counter({ name: 'convault_cache_hits_total', help: 'Cache lookups answered from memory', labelNames: ['cache'] as const, registers });
  const cacheMisses = new Counter({ name: 'convault_cache_misses_total', help: 'Cache lookups that had to go to the database or KMS', labelNames: ['cache'] as const, registers });
  const cacheEvictions = new Counter({ name: 'convault_cache_evictions_total', help: 'Entries that left a cache (expiry, max uses, LRU overflow, deletion); plaintext keys are zeroed', labelNames: ['cache'] as const, registers });
  const operationLabels = options.orgLabel ? (['operation', 'outcome', 'org'] as const) : (['operation', 'outcome'] as const);
  const operations = new Counter<string>({
    name: 'convault_operations_total',
    help: 'Secured data and Encrypt/Decrypt Data requests by operation and outcome (success, or the errorType of the answer)',
    labelNames: [...operationLabels],
    registers,
  });
  const groupCommitBatch = new Histogram({
    name: 'convault_sqlite_group_commit_requests',
    help: 'SQLite group commit: write requests per shared transaction (the count is the number of commits)',
    buckets: [1, 2, 4, 8, 16, 32, 64],
    registers,
  });
  const auditAppended = new Counter({ name: 'convault_audit_events_appended_total', help: 'Audit events appended by this process', registers });
  const webhookDeliveries = new Counter({
    name: 'convault_webhook_deliveries_total',
    help: 'Key health webhook delivery attempts by outcome (delivered, retry, failed)',
    labelNames: ['outcome'] as const,
    registers,
  });

  let sources: ScrapeSources | undefined;
  // A scrape while the database is away still answers: the gauges keep their last values.
  const fromDatabase = async <T>(read: (() => Promise<T>) | undefined, apply: (value: T) => void) => {
    if (!read) return;
    try {
      apply(await read());
    } catch {
      /* keep the previous values */
    }
  };

  new Gauge({
    name: 'convault_rewrap_jobs',
    help: 'Rewrap jobs by state (queued, running), all organizations',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      await fromDatabase(sources?.rewrapJobs, (j) => {
        this.set({ state: 'running' }, j.running);
        this.set({ state: 'queued' }, j.queued);
      });
    },
  });
  new Gauge({
    name: 'convault_rewrap_data_keys',
    help: 'Data keys of the queued and running rewrap jobs: done and total',
    labelNames: ['kind'] as const,
    registers,
    async collect() {
      await fromDatabase(sources?.rewrapJobs, (j) => {
        this.set({ kind: 'done' }, j.done);
        this.set({ kind: 'total' }, j.total);
      });
    },
  });
  new Gauge({
    name: 'convault_key_health_organizations',
    help: 'Organizations with a customer key by key health status',
    labelNames: ['status'] as const,
    registers,
    async collect() {
      await fromDatabase(sources?.keyHealth, (counts) => {
        for (const status of ['unknown', 'ok', 'degraded', 'failed']) this.set({ status }, counts[status] ?? 0);
      });
    },
  });
  new Gauge({
    name: 'convault_webhook_outbox',
    help: 'Key health webhook deliveries waiting to be sent (pending) or given up (failed, retryable through the API)',
    labelNames: ['state'] as const,
    registers,
    async collect() {
      await fromDatabase(sources?.webhookOutbox, (o) => {
        this.set({ state: 'pending' }, o.pending);
        this.set({ state: 'failed' }, o.failed);
      });
    },
  });
  new Gauge({
    name: 'convault_webhook_outbox_oldest_pending_seconds',
    help: 'Age of the oldest pending webhook delivery (0 when none)',
    registers,
    async collect() {
      await fromDatabase(sources?.webhookOutbox, (o) => this.set(o.oldestPendingAgeSeconds));
    },
  });
  new Gauge({
    name: 'convault_audit_seal_lag_seconds',
    help: 'Age of the oldest audit event not yet sealed into its chain (0 when none waits), all organizations',
    registers,
    async collect() {
      await fromDatabase(sources?.auditSealLag, (lag) => this.set(lag));
    },
  });
  new Gauge({
    name: 'convault_db_pool_connections',
    help: 'PostgreSQL pool connections: in use, idle, and callers waiting for one (absent on SQLite)',
    labelNames: ['state'] as const,
    registers,
    collect() {
      const p = sources?.pool?.();
      if (!p) return;
      this.set({ state: 'in_use' }, p.total - p.idle);
      this.set({ state: 'idle' }, p.idle);
      this.set({ state: 'waiting' }, p.waiting);
    },
  });

  new Gauge({
    name: 'convault_sqlite_wal_checkpoints',
    help: 'SQLite WAL checkpoints by the background worker since start: runs, frames copied into the database file, worker restarts (absent on PostgreSQL and with CONVAULT_SQLITE_CHECKPOINT=inline)',
    labelNames: ['kind'] as const,
    registers,
    collect() {
      const c = sources?.checkpoints?.();
      if (!c || c.mode !== 'background') return;
      this.set({ kind: 'runs' }, c.runs);
      this.set({ kind: 'frames' }, c.framesCheckpointed);
      this.set({ kind: 'restarts' }, c.restarts);
    },
  });

  const cacheObserver = (cache: CacheName): CacheObserver => {
    const labels = { cache };
    return {
      hit: () => cacheHits.inc(labels),
      miss: () => cacheMisses.inc(labels),
      evicted: (count) => cacheEvictions.inc(labels, count),
    };
  };

  return {
    registry,
    contentType: registry.contentType,
    /** The text a scraper gets. */
    render: () => registry.metrics(),
    setScrapeSources(s: ScrapeSources): void {
      sources = s;
    },
    observeHttp(route: string, method: string, status: number, seconds: number): void {
      httpRequests.inc({ route, method, status: String(status) });
      httpDuration.observe({ route, method }, seconds);
    },
    observeKmsCall(provider: string, operation: string, outcome: string, ms: number): void {
      kmsCalls.inc({ provider, operation, outcome });
      kmsDuration.observe({ provider, operation }, ms / 1000);
    },
    observeOperation(operation: string, outcome: string, orgId: string | undefined): void {
      operations.inc(options.orgLabel ? { operation, outcome, org: orgId ?? 'none' } : { operation, outcome });
    },
    auditAppended: () => auditAppended.inc(),
    observeGroupCommit: (size: number) => groupCommitBatch.observe(size),
    webhookDelivery: (outcome: 'delivered' | 'retry' | 'failed') => webhookDeliveries.inc({ outcome }),
    cacheObserver,
  };
}
