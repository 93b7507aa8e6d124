import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { CacheObserver } from '../../crypto/index.js';
import { isKeyProviderError, type KeyTestReport } from '../../providers/key-provider.js';
import type { ProviderFields } from '../../providers/provider-factory.js';
import { KEY_CONFIGURATION_TYPES, keyConfigurationType, publicFieldsOf, secretFieldsOf } from '../../providers/registry.js';
import type { XksUrlPolicy } from '../../providers/xks/url-policy.js';
import type { Database, KeyConfigurationsTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import type { Caller } from '../auth/auth-service.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import type { RateLimiter } from '../rate-limiter.js';
import type { KeyConfigDal } from './keyconfig-dal.js';
import { KEY_CONFIG_BASE_PATH, SECRET_MASK, toHistoryModel, toKeyConfigModel, type KeyConfigBody, type KeyConfigModel, type KeyConfigurationType } from './keyconfig-model.js';
import type { OrgKeys } from './org-keys.js';
import type { SecretBox } from './secret-box.js';

/**
 * The key new data of an organization is protected with, as resolved at this moment. `keyId` is
 * the reference its provider is reached with: the alias ARN (KmsSymmetric), the XKS key reference
 * (LocalKeyManager), the platform key ARN (None).
 */
export interface ActiveKey {
  type: KeyConfigurationType;
  keyId: string;
  version: number;
}

/** What services need of the audit trail: appending an event (optionally inside their transaction). */
export type AuditRecorder = Pick<AuditService, 'record'>;

export interface KeyConfigSettings {
  platformAccountId: string;
  encryptionContextKey: string;
  allowedRegions: readonly string[];
  defaultRegion: string;
  /** Longest time a node keeps using a configuration another node may have replaced. */
  refreshMs: number;
  /** Which XKS proxy addresses a LocalKeyManager configuration may name. */
  xksUrlPolicy: XksUrlPolicy;
}

export interface KeyConfigServiceDeps {
  dal: KeyConfigDal;
  /** Builds the provider of a configuration for its Test. */
  keys: Pick<OrgKeys, 'forConfiguration'>;
  /** Seals the secret fields (apiKey, clientKey) under the platform key. */
  secrets: Pick<SecretBox, 'seal' | 'open'>;
  /** The key-policy statements that grant the platform use of a key for these organizations (the AWS adapter's helper). */
  keyPolicyStatements(input: { platformAccountId: string; encryptionContextKey: string; orgIds: string[] }): unknown;
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

interface CheckedBody {
  type: KeyConfigurationType;
  /** The url as stored ('' for None). */
  url: string;
  /** The canonical key reference the registry validated ('' for None). */
  reference: string;
  /** Every field of the configuration, secrets included (memory only): what its provider is built from. */
  fields: ProviderFields;
  publicFields: Record<string, string>;
  secretFields: Record<string, string>;
}

export function createKeyConfigService(deps: KeyConfigServiceDeps) {
  const { dal, settings } = deps;
  const clock = deps.clock ?? Date.now;
  const activeCache = new Map<string, { key: ActiveKey; checkedAt: number }>();

  async function findOwn(caller: Caller, id: string): Promise<KeyConfigurationsTable> {
    const row = await dal.findById(caller.orgId, id);
    if (!row) throw notFound('Key configuration');
    return row;
  }

  const referenceContext = () => ({ allowedRegions: settings.allowedRegions, xksUrlPolicy: settings.xksUrlPolicy, platformAccountId: settings.platformAccountId });

  /**
   * The body checked by its type's rules (the registry). On a PUT, a secret left out or sent back
   * masked keeps the one saved with the current configuration of the same type.
   */
  async function checkBody(caller: Caller, body: KeyConfigBody, current?: KeyConfigurationsTable): Promise<CheckedBody> {
    const spec = keyConfigurationType(body.keyConfigurationType);
    if (!spec) throw badRequest(`keyConfigurationType must be one of ${Object.keys(KEY_CONFIGURATION_TYPES).join(', ')}.`, { field: 'keyConfigurationType' }, 'InvalidKeyConfiguration');
    const given = body as unknown as Record<string, unknown>;
    const secretFields = secretFieldsOf(spec.type, given);
    for (const [name, value] of Object.entries(secretFields)) if (value === SECRET_MASK) delete secretFields[name];
    if (current && current.type === spec.type && current.sealed_secrets) {
      const saved = await deps.secrets.open(caller.orgId, current.id, current.sealed_secrets);
      for (const f of spec.fields) if (f.secret && secretFields[f.name] === undefined && saved[f.name] !== undefined) secretFields[f.name] = saved[f.name]!;
    }
    const publicFields = publicFieldsOf(spec.type, given);
    const fields: ProviderFields = { url: typeof body.url === 'string' ? body.url.trim() : undefined, ...publicFields, ...secretFields };
    const validated = spec.validateReference(fields, referenceContext());
    if (!validated.ok) throw badRequest(validated.message, { field: /^keyId /.test(validated.message) ? 'keyId' : 'url' }, 'InvalidKeyConfiguration');
    for (const f of spec.fields) {
      if (f.required && !fields[f.name]) throw badRequest(`${f.name} is required for ${spec.type} (${f.description}).`, { field: f.name }, 'InvalidKeyConfiguration');
    }
    const url = spec.urlOf(validated.value);
    return { type: spec.type, url, reference: validated.value, fields: { ...fields, url }, publicFields, secretFields };
  }

  /** A report for a configuration refused before any call: the Test's first step, failed. */
  function syntaxReport(type: KeyConfigurationType, message: string): KeyTestReport {
    const error = { message, code: 'bad.request', errorType: 'InvalidKeyConfiguration' };
    return { ok: false, steps: [{ step: KEY_CONFIGURATION_TYPES[type].syntaxStep, ok: false, ms: 0, error }], lastError: error };
  }

  /** Runs the Test through the type's provider (rate-limited: each run costs the customer's key manager requests). */
  async function test(caller: Caller, checked: CheckedBody): Promise<KeyTestReport> {
    await deps.testLimiter.take(caller.orgId, 'key tests');
    let provider;
    try {
      provider = deps.keys.forConfiguration(checked.type, checked.fields);
    } catch (err) {
      if (isKeyProviderError(err)) return syntaxReport(checked.type, err.message);
      throw err;
    }
    try {
      return await provider.test(caller.orgId);
    } finally {
      provider.close?.();
    }
  }

  /** The Test of a body as sent: a body its type refuses gets a one-step report, at no cost. */
  async function testBody(caller: Caller, body: KeyConfigBody): Promise<{ checked?: CheckedBody; report: KeyTestReport }> {
    let checked: CheckedBody;
    try {
      checked = await checkBody(caller, body, body.id ? await dal.findById(caller.orgId, body.id) : undefined);
    } catch (err) {
      const spec = keyConfigurationType(body.keyConfigurationType);
      if (err instanceof AppError && err.status === 400 && spec) return { report: syntaxReport(spec.type, err.message) };
      throw err;
    }
    return { checked, report: await test(caller, checked) };
  }

  /** What the audit trail keeps of a configuration: never a secret, never a PEM body. */
  function described(checked: Pick<CheckedBody, 'type' | 'url' | 'publicFields'>): Record<string, unknown> {
    const shown: Record<string, string> = {};
    for (const [name, value] of Object.entries(checked.publicFields)) shown[name] = value.includes('-----BEGIN') ? '(PEM)' : value;
    return { keyConfigurationType: checked.type, url: checked.url, ...shown };
  }

  function describedRow(row: KeyConfigurationsTable): Record<string, unknown> {
    const stored = row.fields ? (JSON.parse(row.fields) as { public?: Record<string, string> }).public ?? {} : {};
    return described({ type: row.type, url: row.url, publicFields: stored });
  }

  async function sealedFields(caller: Caller, configId: string, checked: CheckedBody): Promise<Pick<KeyConfigurationsTable, 'fields' | 'sealed_secrets'>> {
    const secretNames = Object.keys(checked.secretFields);
    const hasFields = secretNames.length > 0 || Object.keys(checked.publicFields).length > 0;
    return {
      fields: hasFields ? JSON.stringify({ public: checked.publicFields, secrets: secretNames }) : null,
      sealed_secrets: secretNames.length > 0 ? await deps.secrets.seal(caller.orgId, configId, checked.secretFields) : null,
    };
  }

  /** The key the configuration resolved to: the Test's key ARN (an alias follows to its key), the XKS key reference. */
  const resolvedKey = (checked: CheckedBody, report: KeyTestReport) => (ownKey(checked.type) ? report.keyArn ?? checked.reference : null);
  /** The audit action of a save: choosing the platform's key (None) is recorded apart. */
  const saveAction = (type: KeyConfigurationType, action: 'keyconfig.create' | 'keyconfig.save') => (ownKey(type) ? action : 'keyconfig.none');

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
      const checked = await checkBody(caller, body);
      const { type } = checked;
      if (await dal.findByOrg(caller.orgId)) {
        throw conflict('This organization already has a key configuration for conversations; update it with PUT instead.');
      }
      const report = await test(caller, checked);
      if (!report.ok) {
        await audit(caller, 'keyconfig.create', 'new', 'failure', { ...described(checked), test: summary(report) });
        throw refused(report);
      }
      const now = clock();
      const id = randomUUID();
      const row: KeyConfigurationsTable = {
        id,
        org_id: caller.orgId,
        type,
        url: checked.url,
        key_arn: resolvedKey(checked, report),
        version: 1,
        last_error: null,
        created_at: now,
        updated_at: now,
        updated_by_id: caller.principalId,
        updated_by_name: caller.principalName,
        ...(await sealedFields(caller, id, checked)),
      };
      const inserted = await dal.transaction(async (trx) => {
        if (!(await dal.insert(row, trx))) return false;
        await dal.insertHistory(historyRow(row, report), trx);
        await audit(caller, saveAction(type, 'keyconfig.create'), row.id, 'success', {
          new: { ...described(checked), keyArn: row.key_arn, version: 1 },
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
      const checked = await checkBody(caller, body, current);
      const { type } = checked;
      const report = await test(caller, checked);
      const old = { ...describedRow(current), keyArn: current.key_arn, version: current.version };
      if (!report.ok) {
        await audit(caller, saveAction(type, 'keyconfig.save'), id, 'failure', { old, requested: described(checked), test: summary(report) });
        throw refused(report);
      }
      const next: KeyConfigurationsTable = {
        ...current,
        type,
        url: checked.url,
        key_arn: resolvedKey(checked, report),
        version: current.version + 1,
        last_error: null,
        updated_at: clock(),
        updated_by_id: caller.principalId,
        updated_by_name: caller.principalName,
        ...(await sealedFields(caller, id, checked)),
      };
      const rotatedSecrets = Object.keys(checked.secretFields).filter((name) => body[name as keyof KeyConfigBody] !== undefined && body[name as keyof KeyConfigBody] !== SECRET_MASK);
      const saved = await dal.transaction(async (trx) => {
        const { id: _id, org_id: _org, created_at: _c, ...changes } = next;
        if (!(await dal.updateIfVersion(caller.orgId, id, current.version, changes, trx))) return false;
        await dal.insertHistory(historyRow(next, report), trx);
        await audit(caller, saveAction(type, 'keyconfig.save'), id, 'success', {
          old,
          new: { ...described(checked), keyArn: next.key_arn, version: next.version },
          // Which secrets this save set (names only): a credential rotation is on the record.
          ...(rotatedSecrets.length ? { secretsSet: rotatedSecrets } : {}),
          test: summary(report),
        }, trx);
        return true;
      });
      if (!saved) throw conflict('The key configuration was changed by someone else while saving; reload and try again.');
      activeCache.delete(caller.orgId);
      await deps.onSaved?.(next);
      return toKeyConfigModel(next);
    },

    /** Test: the body as sent (secrets masked), extended with the step report. Saves nothing. */
    async validate(caller: Caller, body: KeyConfigBody) {
      const type = body.keyConfigurationType;
      // A type without a key of the organization's has no url.
      const urlless = keyConfigurationType(type)?.customerOwned === false;
      const { checked, report } = await testBody(caller, body);
      await audit(caller, 'keyconfig.test', body.id ?? 'unsaved', report.ok ? 'success' : 'failure', {
        ...(checked ? described(checked) : { keyConfigurationType: type, url: urlless ? '' : body.url }),
        test: summary(report),
      });
      const echoed: Record<string, unknown> = { ...body };
      const spec = keyConfigurationType(type);
      for (const f of spec?.fields ?? []) if (f.secret && echoed[f.name] !== undefined) echoed[f.name] = SECRET_MASK;
      return {
        ...echoed,
        url: urlless ? '' : body.url ?? '',
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
        statement: deps.keyPolicyStatements({
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
    /**
     * Cached up to CONVAULT_CONFIG_REFRESH_MS for the request path. `fresh` reads the database: an
     * admin action that acts on "the current key" (a rewrap's target, the usage view) must see a Save
     * made a moment ago on another node.
     */
    async resolveActiveKey(orgId: string, opts: { fresh?: boolean } = {}): Promise<ActiveKey> {
      const cached = activeCache.get(orgId);
      const now = clock();
      if (!opts.fresh && cached && now - cached.checkedAt < settings.refreshMs) {
        deps.cacheObserver?.hit();
        return cached.key;
      }
      deps.cacheObserver?.miss();
      const row = await dal.findByOrg(orgId);
      // A configuration saved by an earlier build may break a rule checked on save since (the type's entry words it).
      const refused = row ? KEY_CONFIGURATION_TYPES[row.type].refusedReference?.(row.url, settings.platformAccountId) : undefined;
      if (refused !== undefined) throw new AppError(424, 'customer.key.error', refused, 'InvalidKeyConfiguration');
      const key: ActiveKey = !row || !KEY_CONFIGURATION_TYPES[row.type].customerOwned
        ? { type: 'None', keyId: deps.platformKeyArn, version: row?.version ?? 0 }
        // An alias is used as such (its target may move); another type by the key it resolved to.
        : { type: row.type, keyId: KEY_CONFIGURATION_TYPES[row.type].ownsReference(row.url) ? row.url : row.key_arn ?? row.url, version: row.version };
      activeCache.set(orgId, { key, checkedAt: now });
      return key;
    },

    /** The keys that are this organization's: what its configuration resolved to, now or before. */
    async knownKeyArns(orgId: string): Promise<ReadonlySet<string>> {
      return new Set(await dal.listKeyArns(orgId));
    },

    /** Records (or clears, with null) the ErrorBody of the last failed use of the org's key. */
    async recordLastError(orgId: string, error: Record<string, unknown> | null): Promise<void> {
      await dal.setLastError(orgId, error ? JSON.stringify(error) : null);
    },
  };
}

/** Whether the type's key is the organization's own (not the platform's). */
function ownKey(type: KeyConfigurationType): boolean {
  return KEY_CONFIGURATION_TYPES[type].customerOwned;
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
    fields: row.fields,
    sealed_secrets: row.sealed_secrets,
    saved_at: row.updated_at,
    saved_by_id: row.updated_by_id,
    saved_by_name: row.updated_by_name,
    test_report: JSON.stringify(report),
  };
}
