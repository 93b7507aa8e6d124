import type { Kysely } from 'kysely';
import { isEnvelopeError, type CacheObserver } from '../../crypto/index.js';
import type { Database, OrgDataKeysTable, SecuredValuesTable } from '../../store/schema.js';
import type { AuditService } from '../audit/audit-service.js';
import type { Caller } from '../auth/auth-service.js';
import { AppError } from '../errors.js';
import type { OrgKeys } from '../keyconfig/org-keys.js';
import type { KeyConfigService } from '../keyconfig/keyconfig-service.js';
import { createConversationKeyManager, type NewConversationKey } from './conversation-key-manager.js';
import { createDataKeyManager } from './data-key-manager.js';
import { conversationNotFound, dataIntegrityError, dataShredded } from './errors.js';
import type { KeyErrorRecorder, KeyErrorSettings } from './key-errors.js';
import { checkConversationId, MAX_ATTRIBUTES, parseSecuredDataBody, tooManyAttributes, type SecuredDataChange } from './limits.js';
import type { SecuredDataDal } from './secured-data-dal.js';
import { openAttribute, sealAttribute } from './value-codec.js';

export interface SecuredDataSettings extends KeyErrorSettings {
  rotateMs: number;
  maxConversations: number;
  cacheMaxAgeMs: number;
  /** Plaintext org data keys held at most (default 10,000). */
  dataKeyCacheMaxEntries?: number;
  /** Plaintext conversation keys held at most (default 50,000). */
  conversationKeyCacheMaxEntries?: number;
}

export interface SecuredDataServiceDeps {
  dal: SecuredDataDal;
  /** The organization's keys, whatever provider holds them (src/services/keyconfig/org-keys.ts). */
  keys: Pick<OrgKeys, 'forReference'>;
  keyConfigs: Pick<KeyConfigService, 'resolveActiveKey'>;
  audit: Pick<AuditService, 'record'>;
  keyErrors?: KeyErrorRecorder;
  settings: SecuredDataSettings;
  clock?: () => number;
  /** Hit, miss and eviction counts of the two plaintext key caches (metrics). */
  cacheObservers?: { dataKeys?: CacheObserver; conversationKeys?: CacheObserver };
}

/** GET answer. */
export interface SecuredDataModel {
  conversationId: string;
  data: Record<string, string>;
  /** Version of the key configuration the conversation's data key was made under (0: no configuration yet). */
  keyConfigurationVersion: number;
  /** The KMS key that protects the conversation now (the key ARN, not the alias). */
  keyArn: string;
}

/** PUT / PATCH answer: what is stored now, never the values. */
export interface SecuredDataWriteResult {
  conversationId: string;
  attributeNames: string[];
  keyConfigurationVersion: number;
  keyArn: string;
}

export type SecuredDataService = ReturnType<typeof createSecuredDataService>;

/** The data key a new conversation key was wrapped under was shredded while the write was prepared. */
class DataKeyGone extends Error {
  constructor(readonly dataKeyId: string) {
    super('the org data key was shredded meanwhile');
  }
}

/** Bounded retries when concurrent writers of one conversation race (first writes, re-keying, shreds). */
const MAX_WRITE_ATTEMPTS = 4;
/** Audit details are capped at 8 KiB; attribute names beyond this budget are counted, not listed. */
const AUDIT_NAMES_BUDGET = 4000;

/** How a write will protect its values: the conversation's key as it is, a new one, or a replacement. */
type WritePlan =
  | { kind: 'existing'; key: Buffer; wrapped: Buffer; dataKey: OrgDataKeysTable }
  | { kind: 'create'; key: Buffer; created: NewConversationKey; dataKey: OrgDataKeysTable }
  // The conversation's key was made under an older key configuration (or its data key was shredded):
  // its values move to a new key under the current configuration. `previous` opens the old values (merge only).
  | { kind: 'rekey'; key: Buffer; created: NewConversationKey; dataKey: OrgDataKeysTable; expectedWrapped: Buffer; previous?: Buffer };

/**
 * Secured data of conversations: key/value attributes sealed under a per-conversation key, which is
 * wrapped under the org data key, which KMS wraps under the organization's CMK (DESIGN.md).
 */
export function createSecuredDataService(deps: SecuredDataServiceDeps) {
  const { dal, settings } = deps;
  const clock = deps.clock ?? Date.now;
  const dataKeys = createDataKeyManager({
    dal,
    keys: deps.keys,
    keyConfigs: deps.keyConfigs,
    keyErrors: deps.keyErrors,
    settings: { ...settings, cacheMaxEntries: settings.dataKeyCacheMaxEntries ?? 10_000 },
    clock,
    cacheObserver: deps.cacheObservers?.dataKeys,
  });
  const conversationKeys = createConversationKeyManager({
    dataKeys,
    settings: { cacheMaxAgeMs: settings.cacheMaxAgeMs, cacheMaxEntries: settings.conversationKeyCacheMaxEntries ?? 50_000 },
    clock,
    cacheObserver: deps.cacheObservers?.conversationKeys,
  });

  async function prepare(orgId: string, conversationId: string, mode: 'replace' | 'merge', deleteOnly: boolean): Promise<WritePlan> {
    const existing = await dal.findConversationKey(orgId, conversationId);
    if (!existing) {
      // A merge that sets nothing (it only deletes) has nothing to create: the conversation is missing, as for a read.
      if (deleteOnly) throw conversationNotFound();
      const created = await conversationKeys.create(orgId, conversationId);
      return { kind: 'create', key: created.plaintext, created, dataKey: created.dataKey };
    }
    const old = existing.dataKey;
    const shredded = !old || old.shredded_at !== null || old.wrapped_key === null;
    if (!shredded && dataKeys.isCurrent(old, await deps.keyConfigs.resolveActiveKey(orgId))) {
      const key = conversationKeys.peek(orgId, conversationId, existing.key) ?? (await conversationKeys.open(orgId, conversationId, existing.key, old));
      return { kind: 'existing', key, wrapped: Buffer.from(existing.key.wrapped), dataKey: old };
    }
    // Values written after a key configuration switch are protected by the new configuration's key.
    const previous = !shredded && mode === 'merge' ? await conversationKeys.open(orgId, conversationId, existing.key, old) : undefined;
    try {
      const created = await conversationKeys.create(orgId, conversationId);
      return { kind: 'rekey', key: created.plaintext, created, dataKey: created.dataKey, expectedWrapped: Buffer.from(existing.key.wrapped), previous };
    } catch (err) {
      previous?.fill(0);
      throw err;
    }
  }

  /**
   * Inside the write transaction: makes the plan's key the conversation's key, or reports a lost race
   * (false: start again). A data key shredded meanwhile throws, which rolls the transaction back.
   */
  async function claim(trx: Kysely<Database>, plan: WritePlan, orgId: string, conversationId: string): Promise<boolean> {
    switch (plan.kind) {
      case 'create':
      case 'rekey': {
        const outcome =
          plan.kind === 'create'
            ? await dal.insertConversationKey(trx, plan.created.row)
            : await dal.replaceConversationKey(trx, plan.expectedWrapped, plan.created.row);
        if (outcome === 'dataKeyGone') throw new DataKeyGone(plan.created.row.data_key_id);
        return outcome === 'inserted';
      }
      case 'existing': {
        // Locked (PostgreSQL) until commit: a concurrent re-key or shred waits for this write, or this write sees it.
        const current = await dal.lockConversationKey(trx, orgId, conversationId);
        return current !== undefined && current.wrapped.equals(plan.wrapped);
      }
    }
  }

  function sealAll(plan: WritePlan, orgId: string, conversationId: string, values: Map<string, string>, now: number): SecuredValuesTable[] {
    const rows: SecuredValuesTable[] = [];
    for (const [name, value] of values) {
      rows.push({ org_id: orgId, conversation_id: conversationId, name, envelope: sealAttribute(plan.key, orgId, conversationId, name, value), updated_at: now });
    }
    return rows;
  }

  async function write(caller: Caller, rawConversationId: unknown, body: unknown, mode: 'replace' | 'merge'): Promise<SecuredDataWriteResult> {
    const conversationId = checkConversationId(rawConversationId);
    const change = parseSecuredDataBody(body, { allowNull: mode === 'merge' });
    const orgId = caller.orgId;
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const plan = await prepare(orgId, conversationId, mode, mode === 'merge' && change.set.size === 0);
      try {
        const now = clock();
        const sealed = sealAll(plan, orgId, conversationId, change.set, now);
        let names: string[] | undefined;
        try {
          names = await dal.transaction(async (trx) => {
            if (!(await claim(trx, plan, orgId, conversationId))) return undefined;
            await applyChange(trx, plan, orgId, conversationId, change, sealed, mode, now);
            // A replace leaves exactly the names it set; only a merge needs to ask what is stored now.
            const stored = mode === 'replace' ? [...change.set.keys()].sort(byUtf8) : await dal.listNames(trx, orgId, conversationId);
            if (stored.length > MAX_ATTRIBUTES) throw tooManyAttributes(stored.length); // rolls everything back
            await deps.audit.record(
              {
                orgId,
                principal: caller.principalId,
                action: 'secureddata.write',
                target: conversationId,
                outcome: 'success',
                details: {
                  principalName: caller.principalName,
                  mode,
                  ...nameList('set', [...change.set.keys()]),
                  ...nameList('deleted', change.remove),
                  attributeCount: stored.length,
                  keyArn: plan.dataKey.key_arn,
                  ...(plan.kind !== 'existing' ? { newConversationKey: true } : {}),
                },
              },
              trx,
            );
            return stored;
          });
        } catch (err) {
          if (!(err instanceof DataKeyGone)) throw err;
          dataKeys.forget([err.dataKeyId]); // shredded by another node: this node must not use it again
          continue;
        }
        if (names === undefined) continue; // another writer got there first: start again from its state
        if (plan.kind !== 'existing') {
          conversationKeys.remember(plan.created);
        }
        return { conversationId, attributeNames: names, keyConfigurationVersion: plan.dataKey.config_version, keyArn: plan.dataKey.key_arn };
      } finally {
        plan.key.fill(0);
        if (plan.kind === 'rekey') plan.previous?.fill(0);
      }
    }
    throw new AppError(503, 'secured.data.contention', 'The conversation was being changed by other requests at the same moment; try again.');
  }

  async function applyChange(
    trx: Kysely<Database>,
    plan: WritePlan,
    orgId: string,
    conversationId: string,
    change: SecuredDataChange,
    sealed: SecuredValuesTable[],
    mode: 'replace' | 'merge',
    now: number,
  ): Promise<void> {
    if (plan.kind === 'rekey') {
      // The old values move to the new key (merge) or are replaced anyway (replace, or their key was shredded).
      const carried: SecuredValuesTable[] = [];
      if (mode === 'merge' && plan.previous) {
        const oldKey = plan.previous;
        for (const v of await dal.listValues(trx, orgId, conversationId)) {
          if (change.set.has(v.name) || change.remove.includes(v.name)) continue;
          let value: string;
          try {
            value = openAttribute(oldKey, orgId, conversationId, v.name, v.envelope);
          } catch (err) {
            if (isEnvelopeError(err)) throw dataIntegrityError(`attribute ${v.name} does not open: ${err.code}`, { attribute: v.name });
            throw err;
          }
          carried.push({ org_id: orgId, conversation_id: conversationId, name: v.name, envelope: sealAttribute(plan.key, orgId, conversationId, v.name, value), updated_at: now });
        }
      }
      await dal.deleteValues(trx, orgId, conversationId);
      await dal.upsertValues(trx, carried);
    } else if (plan.kind === 'create') {
      // insertConversationKey already removed whatever an earlier, shredded key left behind.
    } else if (mode === 'replace') {
      await dal.deleteValues(trx, orgId, conversationId);
    } else {
      await dal.deleteValues(trx, orgId, conversationId, change.remove);
    }
    await dal.upsertValues(trx, sealed);
  }

  /** Records a failed read/write whose cause the organization should see in its trail (key or integrity problems). */
  async function auditFailure(caller: Caller, action: string, conversationId: string, err: unknown): Promise<void> {
    if (!(err instanceof AppError) || !err.errorType || err.status < 424) return;
    try {
      await deps.audit.record({
        orgId: caller.orgId,
        principal: caller.principalId,
        action,
        target: conversationId,
        outcome: 'failure',
        details: { principalName: caller.principalName, errorType: err.errorType, status: err.status },
      });
    } catch {
      // The request already failed; its own error is the one to report.
    }
  }

  return {
    /** Decrypts every attribute of the conversation. Each read is an audit event naming the attributes, never their values. */
    async get(caller: Caller, rawConversationId: unknown): Promise<SecuredDataModel> {
      const conversationId = checkConversationId(rawConversationId);
      const orgId = caller.orgId;
      try {
        const snapshot = await dal.readConversation(orgId, conversationId);
        if (!snapshot) throw conversationNotFound();
        const dataKey = snapshot.dataKey;
        if (!dataKey || dataKey.shredded_at !== null || dataKey.wrapped_key === null) throw dataShredded();
        const key = conversationKeys.peek(orgId, conversationId, snapshot.key) ?? (await conversationKeys.open(orgId, conversationId, snapshot.key, dataKey));
        const data: Record<string, string> = {};
        try {
          for (const v of snapshot.values) {
            try {
              data[v.name] = openAttribute(key, orgId, conversationId, v.name, v.envelope);
            } catch (err) {
              if (isEnvelopeError(err)) throw dataIntegrityError(`attribute ${v.name} does not open: ${err.code}`, { attribute: v.name });
              throw err;
            }
          }
        } finally {
          key.fill(0);
        }
        const names = Object.keys(data);
        await deps.audit.record({
          orgId,
          principal: caller.principalId,
          action: 'secureddata.read',
          target: conversationId,
          outcome: 'success',
          details: { principalName: caller.principalName, ...nameList('attributes', names), attributeCount: names.length, keyArn: dataKey.key_arn },
        });
        return { conversationId, data, keyConfigurationVersion: dataKey.config_version, keyArn: dataKey.key_arn };
      } catch (err) {
        await auditFailure(caller, 'secureddata.read', conversationId, err);
        throw err;
      }
    },

    /** PUT: the conversation's attributes become exactly `data`. */
    async replace(caller: Caller, conversationId: unknown, body: unknown): Promise<SecuredDataWriteResult> {
      try {
        return await write(caller, conversationId, body, 'replace');
      } catch (err) {
        await auditFailure(caller, 'secureddata.write', String(conversationId), err);
        throw err;
      }
    },

    /** PATCH: sets the given attributes, deletes those given as null, keeps the rest. */
    async merge(caller: Caller, conversationId: unknown, body: unknown): Promise<SecuredDataWriteResult> {
      try {
        return await write(caller, conversationId, body, 'merge');
      } catch (err) {
        await auditFailure(caller, 'secureddata.write', String(conversationId), err);
        throw err;
      }
    },

    /**
     * Crypto-shreds the conversation: its conversation key is destroyed first (from then on no copy
     * of the values can be decrypted, backups included), then the value rows are deleted.
     */
    async shred(caller: Caller, rawConversationId: unknown): Promise<void> {
      const conversationId = checkConversationId(rawConversationId);
      const orgId = caller.orgId;
      const hadKey = await dal.deleteConversationKey(orgId, conversationId);
      conversationKeys.forget(orgId, conversationId);
      const values = await dal.deleteAllValues(orgId, conversationId);
      if (!hadKey && values === 0) throw conversationNotFound();
      await deps.audit.record({
        orgId,
        principal: caller.principalId,
        action: 'secureddata.shred',
        target: conversationId,
        outcome: 'success',
        details: { principalName: caller.principalName, conversationKeyDestroyed: hadKey, valuesDeleted: values },
      });
    },

    /** For the key lifecycle (rewrap, time-window shred): drop cached plaintexts of these data keys. */
    forgetDataKeys(dataKeyIds: Iterable<string>): void {
      dataKeys.forget(dataKeyIds);
    },

    /** The managers, for the benchmark and tests. */
    internals: { dataKeys, conversationKeys },

    /** Zeroes every cached key (shutdown). */
    clearCaches(): void {
      conversationKeys.clear();
      dataKeys.clear();
    },
  };
}

/** The order SQLite's BINARY collation (and PostgreSQL's C collation) gives names: by UTF-8 bytes, i.e. by code point. */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** `{ [label]: names }` while the names fit the audit budget, else the first ones and a truncation mark. */
function nameList(label: string, names: string[]): Record<string, unknown> {
  if (names.length === 0) return {};
  const listed: string[] = [];
  let used = 0;
  for (const name of names) {
    used += name.length + 3;
    if (used > AUDIT_NAMES_BUDGET / 2) break;
    listed.push(name);
  }
  return listed.length === names.length ? { [label]: listed } : { [label]: listed, [`${label}Truncated`]: names.length - listed.length };
}
