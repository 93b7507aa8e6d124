import { randomUUID } from 'node:crypto';
import type { CacheObserver } from '../../crypto/index.js';
import type { AuditService } from '../audit/audit-service.js';
import type { Caller } from '../auth/auth-service.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import type { RateLimiter } from '../rate-limiter.js';
import type { KmsGateway } from '../../kms/kms-gateway.js';
import { platformKeyPolicyStatements } from '../../kms/key-policy.js';
import type { Kysely } from 'kysely';
import type { Database, KeyConfigurationsTable } from '../../store/schema.js';
import { parseAliasArn } from './alias-arn.js';
import type { KeyConfigDal } from './keyconfig-dal.js';
import { KEY_CONFIG_BASE_PATH, toHistoryModel, toKeyConfigModel, type KeyConfigBody, type KeyConfigModel } from './keyconfig-model.js';
import { runKeyTest, type KeyTestReport } from './key-test.js';

/** The key new data of an organization is protected with, as resolved at this moment. */
export type ActiveKey =
  | { type: 'KmsSymmetric'; keyId: string; version: number }
  | { type: 'None'; keyId: string; version: number };

/** What services need of the audit trail: appending an event (optionally inside their transaction). */
export type AuditRecorder = Pick<AuditService, 'record'>;

export interface KeyConfigSettings {
  platformAccountId: string;
  encryptionContextKey: string;
  allowedRegions: readonly string[];
  defaultRegion: string;
  /** Longest time a node keeps using a configuration another node may have replaced. */
  refreshMs: number;
}

export interface KeyConfigServiceDeps {
  dal: KeyConfigDal;
  gateway: Pick<KmsGateway, 'describeKey' | 'generateDataKey' | 'decrypt'>;
  audit: AuditRecorder;
  testLimiter: Pick<RateLimiter, 'take'>;
  /** ARN of the platform's own key, which protects new data when the type is None. */
  platformKeyArn: string;
  settings: KeyConfigSettings;
  /** Told after a create or Save commits (its Test passed): key health records the key as ok. */
  onSaved?: (row: KeyConfigurationsTable) => Promise<void>;
  clock?: () => number;
  /** Hits and misses of the per-organization active-key cache (metrics). */
  cacheObserver?: CacheObserver;
}

export type KeyConfigService = ReturnType<typeof createKeyConfigService>;

export function createKeyConfigService(deps: KeyConfigServiceDeps) {
  const { dal, settings } = deps;
  const clock = deps.clock ?? Date.now;
  const activeCache = new Map<string, { key: ActiveKey; checkedAt: number }>();

  async function findOwn(caller: Caller, id: string): Promise<KeyConfigurationsTable> {
    const row = await dal.findById(caller.orgId, id);
    if (!row) throw notFound('Key configuration');
    return row;
  }

  function checkBody(body: KeyConfigBody): { type: KeyConfigBody['keyConfigurationType']; url: string } {
    if (body.keyConfigurationType === 'None') return { type: 'None', url: '' };
    const parsed = parseAliasArn(body.url, settings.allowedRegions, settings.platformAccountId);
    if (!parsed.ok) throw badRequest(parsed.message, { field: 'url' }, 'InvalidKeyConfiguration');
    return { type: 'KmsSymmetric', url: parsed.value.arn };
  }

  /** Runs the Test against KMS (rate-limited: each run costs the customer KMS requests). */
  async function test(caller: Caller, type: KeyConfigBody['keyConfigurationType'], url: unknown): Promise<KeyTestReport> {
    const target =
      type === 'None' ? ({ kind: 'platform', keyId: deps.platformKeyArn } as const) : ({ kind: 'alias', aliasArn: url } as const);
    if (target.kind === 'alias' && !parseAliasArn(url, settings.allowedRegions, settings.platformAccountId).ok) {
      return runKeyTest({ ...testInput(caller), target }); // syntax only: no KMS call, no token spent
    }
    await deps.testLimiter.take(caller.orgId, 'key tests');
    return runKeyTest({ ...testInput(caller), target });
  }

  function testInput(caller: Caller) {
    return {
      gateway: deps.gateway,
      orgId: caller.orgId,
      platformAccountId: settings.platformAccountId,
      encryptionContextKey: settings.encryptionContextKey,
      allowedRegions: settings.allowedRegions,
      defaultRegion: settings.defaultRegion,
      platformKeyArn: deps.platformKeyArn,
    };
  }

  function refused(report: KeyTestReport): AppError {
    return new AppError(
      422,
      'key.test.failed',
      `The key configuration was not saved because its Test failed: ${report.lastError?.message ?? 'see the report'}`,
      report.lastError?.errorType ?? 'CustomerKeyUnavailable',
      { report },
    );
  }

  async function audit(caller: Caller, action: string, target: string, outcome: 'success' | 'failure', details: Record<string, unknown>, executor?: Kysely<Database>) {
    await deps.audit.record({ orgId: caller.orgId, principal: caller.principalId, action, target, outcome, details: { principalName: caller.principalName, ...details } }, executor);
  }

  const summary = (report: KeyTestReport) => ({
    ok: report.ok,
    failedStep: report.steps.find((s) => !s.ok && !s.advisory)?.step,
    keyArn: report.keyArn,
  });

  return {
    async list(caller: Caller) {
      const row = await dal.findByOrg(caller.orgId);
      const entities = row ? [toKeyConfigModel(row)] : [];
      return { total: entities.length, entities, selfUri: KEY_CONFIG_BASE_PATH };
    },

    async get(caller: Caller, id: string): Promise<KeyConfigModel> {
      return toKeyConfigModel(await findOwn(caller, id));
    },

    async create(caller: Caller, body: KeyConfigBody): Promise<KeyConfigModel> {
      const { type, url } = checkBody(body);
      if (await dal.findByOrg(caller.orgId)) {
        throw conflict('This organization already has a key configuration for conversations; update it with PUT instead.');
      }
      const report = await test(caller, type, url);
      if (!report.ok) {
        await audit(caller, 'keyconfig.create', 'new', 'failure', { keyConfigurationType: type, url, test: summary(report) });
        throw refused(report);
      }
      const now = clock();
      const row: KeyConfigurationsTable = {
        id: randomUUID(),
        org_id: caller.orgId,
        type,
        url,
        key_arn: type === 'None' ? null : report.keyArn ?? null,
        version: 1,
        last_error: null,
        created_at: now,
        updated_at: now,
        updated_by_id: caller.principalId,
        updated_by_name: caller.principalName,
      };
      const inserted = await dal.transaction(async (trx) => {
        if (!(await dal.insert(row, trx))) return false;
        await dal.insertHistory(historyRow(row, report), trx);
        await audit(caller, type === 'None' ? 'keyconfig.none' : 'keyconfig.create', row.id, 'success', {
          new: { keyConfigurationType: type, url, keyArn: row.key_arn, version: 1 },
          test: summary(report),
        }, trx);
        return true;
      });
      if (!inserted) throw conflict('This organization already has a key configuration for conversations; update it with PUT instead.');
      activeCache.delete(caller.orgId);
      await deps.onSaved?.(row);
      return toKeyConfigModel(row);
    },

    async save(caller: Caller, id: string, body: KeyConfigBody): Promise<KeyConfigModel> {
      const current = await findOwn(caller, id);
      if (typeof body.version !== 'number') throw badRequest('version is required: send the version you read, so a concurrent change is not overwritten.', { field: 'version' });
      if (body.version !== current.version) {
        throw conflict(`The key configuration was changed by someone else (version ${current.version}, you sent ${body.version}); reload and try again.`, {
          currentVersion: current.version,
        });
      }
      const { type, url } = checkBody(body);
      const report = await test(caller, type, url);
      const old = { keyConfigurationType: current.type, url: current.url, keyArn: current.key_arn, version: current.version };
      if (!report.ok) {
        await audit(caller, type === 'None' ? 'keyconfig.none' : 'keyconfig.save', id, 'failure', { old, requested: { keyConfigurationType: type, url }, test: summary(report) });
        throw refused(report);
      }
      const next: KeyConfigurationsTable = {
        ...current,
        type,
        url,
        key_arn: type === 'None' ? null : report.keyArn ?? null,
        version: current.version + 1,
        last_error: null,
        updated_at: clock(),
        updated_by_id: caller.principalId,
        updated_by_name: caller.principalName,
      };
      const saved = await dal.transaction(async (trx) => {
        const { id: _id, org_id: _org, created_at: _c, ...changes } = next;
        if (!(await dal.updateIfVersion(caller.orgId, id, current.version, changes, trx))) return false;
        await dal.insertHistory(historyRow(next, report), trx);
        await audit(caller, type === 'None' ? 'keyconfig.none' : 'keyconfig.save', id, 'success', {
          old,
          new: { keyConfigurationType: type, url, keyArn: next.key_arn, version: next.version },
          test: summary(report),
        }, trx);
        return true;
      });
      if (!saved) throw conflict('The key configuration was changed by someone else while saving; reload and try again.');
      activeCache.delete(caller.orgId);
      await deps.onSaved?.(next);
      return toKeyConfigModel(next);
    },

    /** Test: the body as sent, extended with the step report. Saves nothing. */
    async validate(caller: Caller, body: KeyConfigBody) {
      const type = body.keyConfigurationType;
      const report = await test(caller, type, body.url);
      await audit(caller, 'keyconfig.test', body.id ?? 'unsaved', report.ok ? 'success' : 'failure', {
        keyConfigurationType: type,
        url: type === 'None' ? '' : body.url,
        test: summary(report),
      });
      return {
        ...body,
        url: type === 'None' ? '' : body.url ?? '',
        ...(report.lastError ? { lastError: report.lastError } : {}),
        ok: report.ok,
        steps: report.steps,
        ...(report.keyArn ? { keyArn: report.keyArn } : {}),
      };
    },

    async history(caller: Caller, id: string) {
      await findOwn(caller, id);
      const entities = (await dal.listHistory(caller.orgId, id)).map(toHistoryModel);
      return { total: entities.length, entities };
    },

    keyPolicy(caller: Caller) {
      return {
        organizationId: caller.orgId,
        platformAccountId: settings.platformAccountId,
        encryptionContextKey: settings.encryptionContextKey,
        // Two statements: DescribeKey carries no encryption context, so it cannot share the condition.
        statement: platformKeyPolicyStatements({
          platformAccountId: settings.platformAccountId,
          encryptionContextKey: settings.encryptionContextKey,
          orgIds: [caller.orgId],
        }),
      };
    },

    /**
     * The key for new data of an organization. Cached per org and re-read at least every
     * `refreshMs`, so a save on any node takes effect everywhere within that time.
     */
    async resolveActiveKey(orgId: string): Promise<ActiveKey> {
      const cached = activeCache.get(orgId);
      const now = clock();
      if (cached && now - cached.checkedAt < settings.refreshMs) {
        deps.cacheObserver?.hit();
        return cached.key;
      }
      deps.cacheObserver?.miss();
      const row = await dal.findByOrg(orgId);
      // A configuration saved by an earlier build may name the platform's account: never used as the org's key.
      if (row && row.type === 'KmsSymmetric' && !parseAliasArn(row.url, [row.url.split(':')[3] ?? ''], settings.platformAccountId).ok) {
        throw new AppError(
          424,
          'customer.key.error',
          `The configured key ${row.url} is in the platform's own AWS account; the platform's keys are never an organization's key. Configure a key of your own account.`,
          'InvalidKeyConfiguration',
        );
      }
      const key: ActiveKey =
        row && row.type === 'KmsSymmetric'
          ? { type: 'KmsSymmetric', keyId: row.url, version: row.version }
          : { type: 'None', keyId: deps.platformKeyArn, version: row?.version ?? 0 };
      activeCache.set(orgId, { key, checkedAt: now });
      return key;
    },

    /** The KMS keys that are this organization's: what its configuration resolved to, now or before. */
    async knownKeyArns(orgId: string): Promise<ReadonlySet<string>> {
      return new Set(await dal.listKeyArns(orgId));
    },

    /** Records (or clears, with null) the ErrorBody of the last failed use of the org's key. */
    async recordLastError(orgId: string, error: Record<string, unknown> | null): Promise<void> {
      await dal.setLastError(orgId, error ? JSON.stringify(error) : null);
    },
  };
}

function historyRow(row: KeyConfigurationsTable, report: KeyTestReport) {
  return {
    id: randomUUID(),
    config_id: row.id,
    org_id: row.org_id,
    version: row.version,
    type: row.type,
    url: row.url,
    key_arn: row.key_arn,
    saved_at: row.updated_at,
    saved_by_id: row.updated_by_id,
    saved_by_name: row.updated_by_name,
    test_report: JSON.stringify(report),
  };
}
