import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database, KeyConfigurationsTable, KeyHealthTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import type { Caller } from '../auth/auth-service.js';
import { conflict, notFound } from '../errors.js';
import type { KeyConfigDal } from '../keyconfig/keyconfig-dal.js';
import type { KeyConfigService } from '../keyconfig/keyconfig-service.js';
import type { RateLimiter } from '../rate-limiter.js';
import type { KeyHealthDal } from './key-health-dal.js';
import { KEY_CONFIGURATION_TYPES } from '../../providers/registry.js';
import type { OrgKeys } from '../keyconfig/org-keys.js';
import type { ObservedFailureKind } from '../secured-data/key-errors.js';
import { mapLimit, probeOrgKeys, statusForFailure, summarizeKeys } from './probe.js';
import { silentLog, type HealthError, type HealthLog, type KeyHealth, type KeyHealthModel, type ProbeResult, type ProbeTrigger, type StoredHealthStatus, type TransitionPayload } from './types.js';
import type { WebhookOutbox } from './webhook-outbox.js';

export const KEY_HEALTH_PRINCIPAL = 'system:key-health';

export interface KeyHealthSettings {
  /** Period of the background probe of each organization (CONVAULT_KEY_PROBE_INTERVAL_S). */
  intervalMs: number;
  /** The platform's own key: data under it is the platform's concern, not the customer key's health. */
  platformKeyArn: string;
  /** Each period is the interval ± this fraction, at random (default 0.15). */
  jitter?: number;
  /** Probes in flight at once on this node (default 8). */
  concurrency?: number;
  /** A probe still running after this long counts as degraded (default 30 s). */
  probeTimeoutMs?: number;
  /** How often this node looks for due probes (default a tenth of the interval, within 100 ms – 10 s). */
  pollMs?: number;
  /** Names this node's leases (default a random id per process). */
  nodeId?: string;
}

export interface KeyHealthServiceDeps {
  dal: KeyHealthDal;
  keyConfigDal: Pick<KeyConfigDal, 'findByOrg' | 'findById' | 'setKeyArn'>;
  keyConfigs: Pick<KeyConfigService, 'recordLastError'>;
  /** The organization's keys as providers: each probe goes through the current key's provider. */
  keys: Pick<OrgKeys, 'forReference'>;
  audit: Pick<AuditService, 'record'>;
  /** Manual probes (POST …/health/probe) per organization: each costs the customer KMS requests. */
  probeLimiter: Pick<RateLimiter, 'take'>;
  /** The durable outbox transitions are written to (key-health-webhooks.ts); absent → no webhooks. */
  webhooks?: Pick<WebhookOutbox, 'enqueue' | 'wake' | 'start' | 'stop' | 'drain'>;
  settings: KeyHealthSettings;
  log?: HealthLog;
  clock?: () => number;
  random?: () => number;
}

export type KeyHealthService = ReturnType<typeof createKeyHealthService>;

/**
 * Key health: a background probe of every organization with a customer key, one node at a time
 * (a compare-and-set claim of the period on the org's row), status transitions audited and sent
 * to the webhook, and the probe on demand for the API. See docs/KEY_HEALTH.md.
 */
export function createKeyHealthService(deps: KeyHealthServiceDeps) {
  const { dal, settings } = deps;
  const clock = deps.clock ?? Date.now;
  const random = deps.random ?? Math.random;
  const log = deps.log ?? silentLog;
  const intervalMs = settings.intervalMs;
  const jitter = settings.jitter ?? 0.15;
  const concurrency = settings.concurrency ?? 8;
  const probeTimeoutMs = settings.probeTimeoutMs ?? 30_000;
  const pollMs = settings.pollMs ?? Math.min(10_000, Math.max(100, Math.floor(intervalMs / 10)));
  const nodeId = settings.nodeId ?? `node-${randomUUID()}`;
  const batchSize = Math.max(concurrency * 4, 32);

  const webhooks = deps.webhooks;

  let timer: NodeJS.Timeout | undefined;
  let started = false;
  let stopped = false;
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.then(
      () => inFlight.delete(p),
      () => inFlight.delete(p),
    );
    return p;
  };

  /** The interval ± jitter: spreads the probes of many orgs (and nodes) over the period. */
  const nextPeriod = () => Math.round(intervalMs * (1 + jitter * (2 * random() - 1)));

  // ---- one probe ---------------------------------------------------------------------------------

  async function runProbe(config: KeyConfigurationsTable): Promise<ProbeResult> {
    const protectedKeys = (await dal.protectedKeys(config.org_id)).filter((k) => k.keyArn !== settings.platformKeyArn);
    // The key as configured: an alias as such (the probe follows it), another type by its reference.
    const spec = KEY_CONFIGURATION_TYPES[config.type];
    const probe = probeOrgKeys({
      keys: deps.keys,
      currentKey: spec.ownsReference(config.url) ? config.url : config.key_arn ?? config.url,
      orgId: config.org_id,
      lastKnownKeyArn: config.key_arn,
      protectedKeys,
      sampleDataKey: (keyArn) => dal.sampleDataKey(config.org_id, keyArn),
    });
    let timeout: NodeJS.Timeout | undefined;
    const timedOut = new Promise<ProbeResult>((resolve) => {
      timeout = setTimeout(
        () =>
          resolve({
            status: 'degraded',
            lastError: {
              message: `The probe did not finish within ${Math.round(probeTimeoutMs / 1000)} s: the key provider is slow or unreachable from the platform. It is retried at the next probe.`,
              code: 'customer.key.unreachable',
              errorType: 'CustomerKeyUnavailable',
              awsError: 'ProbeTimeout',
            },
            keys: [],
          }),
        probeTimeoutMs,
      );
      timeout.unref();
    });
    try {
      return await Promise.race([probe, timedOut]);
    } finally {
      clearTimeout(timeout);
    }
  }

  async function probeOrg(config: KeyConfigurationsTable, trigger: ProbeTrigger): Promise<KeyHealthTable> {
    const result = await runProbe(config);
    return store(config, result, trigger);
  }

  /**
   * Writes a result with a compare-and-set on the row's version, so that of two probes finishing at
   * once (two nodes, or a manual probe next to the background one) each transition is raised once.
   */
  async function store(config: KeyConfigurationsTable, result: ProbeResult, trigger: ProbeTrigger): Promise<KeyHealthTable> {
    const orgId = config.org_id;
    const checkedAt = clock();
    const values = {
      config_id: config.id,
      status: result.status,
      checked_at: checkedAt,
      last_error: result.lastError ? JSON.stringify(result.lastError) : null,
      deletion_date: result.deletionDate ?? null,
      keys: JSON.stringify(result.keys),
    } as const;
    for (let attempt = 0; attempt < 10; attempt++) {
      const row = await ensureRow(config, checkedAt);
      // A result newer than this one is stored already: keep it, raise nothing.
      if (row.checked_at !== null && Number(row.checked_at) > checkedAt) return row;
      const from = row.status;
      const changed = from !== result.status;
      const written = await dal.transaction(async (trx) => {
        if (!(await dal.writeResult(orgId, row.version, values, checkedAt, trx))) return false;
        if (changed) {
          await auditTransition(config, from, result, checkedAt, trigger, trx);
          // In the same transaction: a recorded transition always has its delivery.
          await webhooks?.enqueue(transitionPayload(config, from, result, checkedAt), trx);
        }
        return true;
      });
      if (!written) continue;
      await afterWrite(config, result);
      if (changed) {
        webhooks?.wake();
        log.info({ orgId, from, to: result.status, trigger }, 'key health changed');
      }
      return { ...row, ...values, version: row.version + 1, updated_at: checkedAt };
    }
    throw new Error(`key health of organization ${orgId} changed too often to be written`);
  }

  async function ensureRow(config: KeyConfigurationsTable, now: number): Promise<KeyHealthTable> {
    let row = await dal.find(config.org_id);
    if (!row) {
      await dal.insertIfMissing({ org_id: config.org_id, config_id: config.id, next_probe_at: now + Math.floor(random() * intervalMs), updated_at: now });
      row = await dal.find(config.org_id);
    }
    if (!row) throw new Error(`key health row of organization ${config.org_id} could not be created`);
    return { ...row, version: Number(row.version) };
  }

  /** The configuration's lastError follows the probe: set when failed, cleared when ok, left alone when degraded. */
  async function afterWrite(config: KeyConfigurationsTable, result: ProbeResult): Promise<void> {
    try {
      if (result.status === 'failed' && result.lastError) {
        const body = JSON.stringify(result.lastError);
        if (config.last_error !== body) await deps.keyConfigs.recordLastError(config.org_id, { ...result.lastError });
      } else if (result.status === 'ok' && config.last_error !== null) {
        await deps.keyConfigs.recordLastError(config.org_id, null);
      }
      // The alias was retargeted in AWS: the configuration names the key it resolves to now.
      if (result.currentKeyArn && result.currentKeyArn !== config.key_arn) await deps.keyConfigDal.setKeyArn(config.org_id, result.currentKeyArn);
    } catch (err) {
      log.warn({ orgId: config.org_id, err: (err as Error).message }, 'key health: could not update the key configuration');
    }
  }

  async function auditTransition(config: KeyConfigurationsTable, from: StoredHealthStatus, result: ProbeResult, checkedAt: number, trigger: ProbeTrigger, trx: Kysely<Database>) {
    await deps.audit.record(
      {
        orgId: config.org_id,
        principal: KEY_HEALTH_PRINCIPAL,
        action: 'keyhealth.transition',
        target: config.id,
        outcome: result.status === 'ok' ? 'success' : 'failure',
        details: {
          from,
          to: result.status,
          trigger,
          checkedAt: new Date(checkedAt).toISOString(),
          ...(result.lastError ? { lastError: auditError(result.lastError) } : {}),
          ...(result.deletionDate !== undefined ? { deletionDate: new Date(result.deletionDate).toISOString() } : {}),
          // Bounded: the event records which keys and in what state, not an inventory.
          keys: result.keys.slice(0, 10).map((k) => ({ keyArn: k.keyArn, current: k.current, state: k.state, status: k.status })),
          ...(result.keys.length > 10 ? { moreKeys: result.keys.length - 10 } : {}),
        },
      },
      trx,
    );
  }

  // ---- what a passing Save and real traffic tell without a probe -------------------------------------

  const parseKeys = (row: KeyHealthTable | undefined): KeyHealth[] => (row?.keys ? (JSON.parse(row.keys) as KeyHealth[]) : []);

  /** Stores what was observed through the same path as a probe (transition audited and sent once), unless nothing changed. */
  async function storeObserved(config: KeyConfigurationsTable, before: KeyHealthTable | undefined, keys: KeyHealth[], trigger: ProbeTrigger): Promise<void> {
    const result = summarizeKeys(keys);
    if (before && before.status === result.status && before.keys === JSON.stringify(result.keys)) return;
    await store(config, result, trigger);
  }

  /**
   * A Save has just run the Test on the new key (GenerateDataKey and Decrypt under the org's
   * context): the current key is ok. Other keys that still protect data keep what was known of them.
   */
  async function afterSave(config: KeyConfigurationsTable): Promise<void> {
    if (!KEY_CONFIGURATION_TYPES[config.type].supportsHealthProbe || !config.key_arn) return;
    const [row, protectedKeys] = await Promise.all([dal.find(config.org_id), dal.protectedKeys(config.org_id)]);
    const live = new Map(protectedKeys.map((k) => [k.keyArn, k.dataKeys]));
    const current: KeyHealth = { keyArn: config.key_arn, current: true, state: 'Enabled', status: 'ok', dataKeys: live.get(config.key_arn) ?? 0 };
    const others = parseKeys(row)
      .filter((k) => k.keyArn !== config.key_arn && live.has(k.keyArn))
      .map((k) => ({ ...k, current: false, dataKeys: live.get(k.keyArn)! }));
    await storeObserved(config, row, [current, ...others], 'save');
    await dal.reschedule(config.org_id, clock() + nextPeriod());
  }

  /**
   * Real use of a key succeeded (no failure) or failed: the key's entry takes the status a probe
   * would give that failure, and the organization's status follows by the same summary.
   */
  async function observeTraffic(orgId: string, keyId: string, failure?: { kind: ObservedFailureKind; error: HealthError }): Promise<void> {
    const config = await deps.keyConfigDal.findByOrg(orgId);
    if (!config || !KEY_CONFIGURATION_TYPES[config.type].supportsHealthProbe) return;
    const row = await dal.find(orgId);
    const keys = parseKeys(row);
    const isCurrent = keyId === config.url || keyId === config.key_arn;
    const i = keys.findIndex((k) => (isCurrent ? k.current : k.keyArn === keyId));
    if (!failure) {
      // Only a known failure can recover; an unprobed key stays unknown until its probe.
      if (i < 0 || keys[i]!.status === 'ok') return;
      const { error: _error, ...rest } = keys[i]!;
      keys[i] = { ...rest, state: 'Enabled', status: 'ok' };
    } else {
      const before: KeyHealth = i >= 0 ? keys[i]! : { keyArn: isCurrent ? config.key_arn ?? keyId : keyId, current: isCurrent, state: 'Unknown', status: 'ok', dataKeys: 0 };
      const state = failure.kind === 'Disabled' ? 'Disabled' : failure.kind === 'InvalidState' && before.state === 'Enabled' ? 'Unknown' : before.state;
      const entry: KeyHealth = { ...before, state, status: statusForFailure(failure.kind), error: isCurrent ? failure.error : { ...failure.error, keyArn: before.keyArn } };
      if (i >= 0) keys[i] = entry;
      else if (isCurrent) keys.unshift(entry);
      else keys.push(entry);
    }
    await storeObserved(config, row, keys, 'traffic');
  }

  // ---- the background schedule ---------------------------------------------------------------------

  /**
   * One pass of the scheduler: creates the rows of newly configured orgs (first probe at a random
   * moment within one interval), then claims and probes every due org, at most `concurrency` at a
   * time. Returns how many orgs this node probed.
   */
  async function probeDue(): Promise<number> {
    const now = clock();
    for (const c of await dal.configsWithoutRow(500)) {
      await dal.insertIfMissing({ org_id: c.org_id, config_id: c.id, next_probe_at: now + Math.floor(random() * intervalMs), updated_at: now });
    }
    let probed = 0;
    for (;;) {
      const due = await dal.findDue(clock(), batchSize);
      await mapLimit(due, concurrency, async (d) => {
        if (stopped) return;
        const claimedAt = clock();
        const claimed = await dal.claim(d.org_id, {
          expectedNextProbeAt: d.next_probe_at,
          nextProbeAt: Math.max(d.next_probe_at, claimedAt) + nextPeriod(),
          owner: nodeId,
          leaseUntil: claimedAt + 2 * probeTimeoutMs,
          now: claimedAt,
        });
        if (!claimed) return; // another node has this period
        probed++;
        try {
          const config = await deps.keyConfigDal.findByOrg(d.org_id);
          if (config && KEY_CONFIGURATION_TYPES[config.type].supportsHealthProbe) await probeOrg(config, 'schedule');
        } catch (err) {
          log.warn({ orgId: d.org_id, err: (err as Error).message }, 'key health probe failed');
        } finally {
          await dal.release(d.org_id, nodeId).catch(() => undefined);
        }
      });
      if (due.length < batchSize || stopped) return probed;
    }
  }

  function scheduleTick(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = undefined;
      void track(
        probeDue().catch((err) => log.warn({ err: (err as Error).message }, 'key health scheduler pass failed')),
      ).finally(scheduleTick);
    }, pollMs);
    timer.unref();
  }

  // ---- API ----------------------------------------------------------------------------------------

  async function findOwn(caller: Caller, configId: string): Promise<KeyConfigurationsTable> {
    const config = await deps.keyConfigDal.findById(caller.orgId, configId);
    if (!config) throw notFound('Key configuration');
    return config;
  }

  function requireCustomerKey(config: KeyConfigurationsTable): void {
    if (!KEY_CONFIGURATION_TYPES[config.type].supportsHealthProbe) {
      throw conflict('The key configuration is None (platform-managed key): health probes check an organization\'s own key; configure one first.');
    }
  }

  return {
    /** Starts the background probes on this node (timers do not keep the process alive). */
    start(): void {
      if (started || stopped) return;
      started = true;
      scheduleTick();
      webhooks?.start();
    },

    /** Stops the probes and the webhook sender, waiting for what is in flight (pending deliveries stay in the outbox). */
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      await webhooks?.stop();
    },

    /** One scheduler pass now (the timer calls it; tests drive it with their own clock). */
    probeDue: () => track(probeDue()),

    /** Probes the organization's key now, whatever the schedule, and returns its health. */
    async probeNow(orgId: string): Promise<KeyHealthModel> {
      const config = await deps.keyConfigDal.findByOrg(orgId);
      if (!config) throw notFound('Key configuration');
      requireCustomerKey(config);
      return toHealthModel(await track(probeOrg(config, 'manual')), config);
    },

    /** GET …/keyconfigurations/{id}/health */
    async get(caller: Caller, configId: string): Promise<KeyHealthModel> {
      const config = await findOwn(caller, configId);
      return toHealthModel(await dal.find(caller.orgId), config);
    },

    /** POST …/keyconfigurations/{id}/health/probe (rate-limited per organization). */
    async probe(caller: Caller, configId: string): Promise<KeyHealthModel> {
      const config = await findOwn(caller, configId);
      requireCustomerKey(config);
      await deps.probeLimiter.take(caller.orgId, 'key health probes');
      const row = await track(probeOrg(config, 'manual'));
      await deps.audit.record({
        orgId: caller.orgId,
        principal: caller.principalId,
        action: 'keyhealth.probe',
        target: config.id,
        outcome: row.status === 'ok' ? 'success' : 'failure',
        details: { principalName: caller.principalName, status: row.status },
      });
      return toHealthModel(row, config);
    },

    /** After a successful create or Save of the configuration (its Test passed): health ok, next probe one interval on. */
    async afterSave(config: KeyConfigurationsTable): Promise<void> {
      try {
        await afterSave(config);
      } catch (err) {
        log.warn({ orgId: config.org_id, err: (err as Error).message }, 'key health: could not record the saved key');
      }
    },

    /** A KMS call of real traffic with the org's key `keyId` succeeded, or failed with `failure`. */
    observeTraffic,

    /** Sends webhook deliveries until none is pending (tests; the background loop does it otherwise). */
    async webhooksIdle(): Promise<void> {
      await webhooks?.drain();
    },

    nodeId,
  };
}

function transitionPayload(config: KeyConfigurationsTable, from: StoredHealthStatus, result: ProbeResult, checkedAt: number): TransitionPayload {
  return {
    event: 'keyhealth.transition',
    orgId: config.org_id,
    configurationId: config.id,
    from,
    to: result.status,
    checkedAt: new Date(checkedAt).toISOString(),
    ...(result.lastError ? { lastError: result.lastError } : {}),
    ...(result.deletionDate !== undefined ? { deletionDate: new Date(result.deletionDate).toISOString() } : {}),
  };
}

function auditError(error: HealthError) {
  return {
    message: error.message,
    code: error.code,
    ...(error.errorType ? { errorType: error.errorType } : {}),
    ...(error.awsError ? { awsError: error.awsError } : {}),
    ...(error.providerError ? { providerError: error.providerError } : {}),
    ...(error.keyArn ? { keyArn: error.keyArn } : {}),
  };
}

/** Row → API model. A configuration of type None has no customer key to be healthy: unknown. */
export function toHealthModel(row: KeyHealthTable | undefined, config: KeyConfigurationsTable): KeyHealthModel {
  if (!row || !KEY_CONFIGURATION_TYPES[config.type].supportsHealthProbe || row.status === 'unknown') return { status: 'unknown' };
  return {
    status: row.status,
    ...(row.checked_at !== null ? { checkedAt: new Date(Number(row.checked_at)).toISOString() } : {}),
    ...(row.last_error ? { lastError: JSON.parse(row.last_error) as HealthError } : {}),
    ...(row.deletion_date !== null ? { deletionDate: new Date(Number(row.deletion_date)).toISOString() } : {}),
    ...(row.keys ? { keys: JSON.parse(row.keys) as KeyHealth[] } : {}),
  };
}
