import { randomUUID } from 'node:crypto';
import { createKeyCache, createSingleFlight, KEY_LENGTH, type CacheObserver } from '../../crypto/index.js';
import { isKeyProviderError, type KeyProvider } from '../../providers/key-provider.js';
import type { OrgDataKeysTable } from '../../store/schema.js';
import type { ActiveKey, KeyConfigService } from '../keyconfig/keyconfig-service.js';
import type { OrgKeys } from '../keyconfig/org-keys.js';
import { dataIntegrityError, dataShredded } from './errors.js';
import { keyFailure, withKeyErrors, type KeyErrorRecorder, type KeyErrorSettings } from './key-errors.js';
import type { SecuredDataDal } from './secured-data-dal.js';

export interface DataKeySettings extends KeyErrorSettings {
  /** A data key is used for new conversations for at most this long (CONVAULT_DATA_KEY_ROTATE_S) … */
  rotateMs: number;
  /** … and for at most this many conversations (CONVAULT_DATA_KEY_MAX_CONVERSATIONS). */
  maxConversations: number;
  /** Longest a plaintext data key stays in memory (CONVAULT_KEY_CACHE_MAX_AGE_S): how fast a revoked CMK takes effect. */
  cacheMaxAgeMs: number;
  cacheMaxEntries: number;
}

export interface DataKeyManagerDeps {
  dal: Pick<SecuredDataDal, 'insertDataKey' | 'findReusableDataKey' | 'findDataKey' | 'reserveConversations'>;
  /** The organization's keys, whatever provider holds them. */
  keys: Pick<OrgKeys, 'forReference'>;
  keyConfigs: Pick<KeyConfigService, 'resolveActiveKey'>;
  keyErrors?: KeyErrorRecorder;
  settings: DataKeySettings;
  clock?: () => number;
  cacheObserver?: CacheObserver;
}

/** A data key ready for use: the caller owns `plaintext` (a copy) and zeroes it when done. */
interface ActiveEntry {
  row: OrgDataKeysTable;
  used: number;
  reserved: number;
}

export interface UnlockedDataKey {
  row: OrgDataKeysTable;
  plaintext: Buffer;
  /** When the cached plaintext expires; a conversation key unwrapped with it must not be cached longer. */
  expiresAt: number;
}

export type DataKeyManager = ReturnType<typeof createDataKeyManager>;

/**
 * Conversations a node reserves on a data key at a time. The row's counter is what all nodes
 * reserved, so the per-key bound holds across nodes, and the row is written once per block instead
 * of once per conversation: one organization's writers do not queue on it.
 */
export const CONVERSATION_BLOCK = 64;

/** A smaller block where the bound itself is small, so several nodes still share one key. */
export function conversationBlock(maxConversations: number): number {
  return Math.max(1, Math.min(CONVERSATION_BLOCK, Math.floor(maxConversations / 16)));
}

/**
 * The org data keys: one active key per organization for new conversations, replaced after the
 * window (time or conversation count) or when the key configuration changes, and unlocked by the
 * key's provider (KMS Decrypt, the XKS proxy's Decrypt) for reads whenever its plaintext is not cached. Concurrent callers share one
 * GenerateDataKey per org and one Decrypt per data key (single-flight).
 */
export function createDataKeyManager(deps: DataKeyManagerDeps) {
  const { settings, dal } = deps;
  const clock = deps.clock ?? Date.now;
  const cache = createKeyCache<string>({ maxAgeMs: settings.cacheMaxAgeMs, maxEntries: settings.cacheMaxEntries, now: clock, observer: deps.cacheObserver });
  // When each cached plaintext expires (the cache evicts on its own; this only answers "until when").
  const expiries = new Map<string, number>();
  // orgId → the data key new conversations of that org get: conversations made under it by this
  // node, and conversations this node reserved on its row.
  const active = new Map<string, ActiveEntry>();
  const generateFlight = createSingleFlight<OrgDataKeysTable>();
  const reserveFlight = createSingleFlight<number>();
  const decryptFlight = createSingleFlight<void>();

  /**
   * Takes one conversation of the entry's key for this node, reserving the next block on the row
   * when this node's share is used up; false when the key has no conversations left (or is gone).
   * Taken before the write, so concurrent requests cannot pass the bound; a write that then fails
   * leaves its slot unused, which only errs on the safe side.
   */
  async function takeSlot(orgId: string, entry: ActiveEntry): Promise<boolean> {
    for (;;) {
      if (entry.used < entry.reserved) {
        entry.used++;
        return true;
      }
      const granted = await reserveFlight.run(entry.row.id, async () => {
        const n = await dal.reserveConversations(orgId, entry.row.id, conversationBlock(settings.maxConversations), settings.maxConversations);
        entry.reserved += n;
        return n;
      });
      if (granted === 0 && entry.used >= entry.reserved) return false;
    }
  }

  // Org data keys are bound to the organization (and, at providers that take more, the data key id);
  // an AWS blob keeps the encryption-context name it was made with.
  const bindingFor = (row: Pick<OrgDataKeysTable, 'id' | 'context_key'>, orgId: string) => ({ orgId, dataKeyId: row.id, contextKey: row.context_key });

  function remember(row: OrgDataKeysTable, plaintext: Buffer): void {
    const expiresAt = clock() + settings.cacheMaxAgeMs;
    cache.set(row.id, plaintext);
    expiries.set(row.id, expiresAt);
    if (expiries.size > settings.cacheMaxEntries * 2) {
      // Keep the expiries of the keys the cache still holds (it evicts on its own, LRU or age).
      const live = new Set<string>();
      cache.deleteWhere((id) => {
        live.add(id);
        return false;
      });
      for (const id of expiries.keys()) if (!live.has(id)) expiries.delete(id);
    }
  }

  function cached(row: OrgDataKeysTable): UnlockedDataKey | undefined {
    const plaintext = cache.get(row.id);
    if (!plaintext) return undefined;
    return { row, plaintext, expiresAt: expiries.get(row.id) ?? clock() };
  }

  /** Whether the row was made under exactly the configuration that is active now. */
  function isCurrent(row: OrgDataKeysTable, key: ActiveKey): boolean {
    return (
      row.key_id_used === key.keyId &&
      row.config_version === key.version &&
      row.config_type === key.type &&
      row.context_key === settings.encryptionContextKey
    );
  }

  async function decryptInto(orgId: string, row: OrgDataKeysTable): Promise<void> {
    await decryptFlight.run(row.id, async () => {
      let out: { plaintext: Buffer };
      let provider: KeyProvider | undefined;
      try {
        provider = await deps.keys.forReference(orgId, row.key_arn);
        out = { plaintext: await provider.unwrapDataKey({ blob: row.wrapped_key!, keyId: row.key_arn }, bindingFor(row, orgId)) };
      } catch (err) {
        // The provider refusing a blob it issued means the stored blob or its row was altered: not a key problem.
        if (isKeyProviderError(err, 'InvalidCiphertext')) {
          throw dataIntegrityError('the key provider refused the stored org data key', { dataKeyId: row.id });
        }
        throw await keyFailure(orgId, row.key_arn, deps.keyErrors, err, provider);
      }
      await deps.keyErrors?.success(orgId, row.key_arn);
      if (out.plaintext.length !== KEY_LENGTH) {
        out.plaintext.fill(0);
        throw dataIntegrityError('an org data key has the wrong length', { dataKeyId: row.id });
      }
      remember(row, out.plaintext);
    });
  }

  /** The plaintext of a data key: from the cache, or from its provider (which is where a revoked key stops reads). */
  async function unlock(orgId: string, row: OrgDataKeysTable): Promise<UnlockedDataKey> {
    if (row.shredded_at !== null || row.wrapped_key === null) throw dataShredded();
    for (let attempt = 0; attempt < 3; attempt++) {
      const hit = cached(row);
      if (hit) return hit;
      await decryptInto(orgId, row);
    }
    // Only reachable with a cache max age shorter than a KMS round trip.
    throw new Error('the org data key left the cache as soon as it was put there; raise CONVAULT_KEY_CACHE_MAX_AGE_S');
  }

  /** Finds a data key of this configuration still inside its window (another node may have made it), or makes one. */
  async function obtainActive(orgId: string, key: ActiveKey): Promise<OrgDataKeysTable> {
    const now = clock();
    const reusable = await dal.findReusableDataKey(orgId, {
      keyIdUsed: key.keyId,
      configVersion: key.version,
      configType: key.type,
      contextKey: settings.encryptionContextKey,
      createdAfter: now - settings.rotateMs,
      maxConversations: settings.maxConversations,
    });
    if (reusable) {
      // Adopted with no conversations of its own yet: the caller takes them (and unlocks the key).
      active.set(orgId, { row: reusable, used: 0, reserved: 0 });
      return reusable;
    }
    const id = randomUUID();
    let provider: KeyProvider | undefined;
    const generated = await withKeyErrors(
      orgId,
      key.keyId,
      deps.keyErrors,
      async () => {
        provider = await deps.keys.forReference(orgId, key.keyId);
        return provider.generateDataKey({ orgId, dataKeyId: id, contextKey: settings.encryptionContextKey });
      },
      () => provider,
    );
    if (generated.plaintext.length !== KEY_LENGTH) {
      generated.plaintext.fill(0);
      throw new Error(`the key provider returned a ${generated.plaintext.length}-byte data key; expected ${KEY_LENGTH}`);
    }
    const row: OrgDataKeysTable = {
      id,
      org_id: orgId,
      key_id_used: key.keyId,
      key_arn: generated.wrapped.keyId,
      config_type: key.type,
      config_version: key.version,
      context_key: settings.encryptionContextKey,
      wrapped_key: generated.wrapped.blob,
      created_at: now,
      // Its first block is reserved with the row.
      conversations: conversationBlock(settings.maxConversations),
      rewrapped_at: null,
      shredded_at: null,
    };
    try {
      await dal.insertDataKey(row);
    } catch (err) {
      generated.plaintext.fill(0);
      throw err;
    }
    remember(row, generated.plaintext);
    active.set(orgId, { row, used: 0, reserved: row.conversations });
    return row;
  }

  return {
    isCurrent,
    unlock,

    /**
     * The data key for a new conversation key of the org, under the configuration active now. A
     * data key made under an older configuration is never returned here.
     */
    async activeKey(orgId: string): Promise<{ key: ActiveKey; dataKey: UnlockedDataKey }> {
      const key = await deps.keyConfigs.resolveActiveKey(orgId);
      // Each turn either takes a conversation of the active key or replaces a key that has none
      // left; the bound only guards against a store that never grants one.
      for (let turn = 0; turn < 100; turn++) {
        const current = active.get(orgId);
        if (current !== undefined && isCurrent(current.row, key) && clock() < current.row.created_at + settings.rotateMs) {
          if (await takeSlot(orgId, current)) {
            const hit = cached(current.row);
            if (hit) return { key, dataKey: hit };
            // Its plaintext expired (or another node made it): before asking KMS, re-read the row.
            // Another node may have rewrapped it (new blob and key ARN) or shredded it meanwhile.
            const row = await dal.findDataKey(orgId, current.row.id);
            if (row && row.shredded_at === null && row.wrapped_key !== null && active.get(orgId) === current) {
              current.row = row;
              return { key, dataKey: await unlock(orgId, row) };
            }
          }
          if (active.get(orgId) === current) active.delete(orgId);
        }
        await generateFlight.run(`${orgId}\n${key.type}\n${key.version}\n${key.keyId}`, () => obtainActive(orgId, key));
      }
      throw new Error('no org data key with conversations left could be obtained');
    },

    /** Drops cached plaintexts of these data keys (e.g. after a shred), zeroing them. */
    forget(dataKeyIds: Iterable<string>): void {
      const ids = new Set(dataKeyIds);
      cache.deleteWhere((id) => ids.has(id));
      for (const id of ids) expiries.delete(id);
      for (const [orgId, entry] of active) if (ids.has(entry.row.id)) active.delete(orgId);
    },

    /** Plaintext data keys held (including expired ones not yet pruned). */
    get cachedCount(): number {
      return cache.size;
    },

    clear(): void {
      cache.clear();
      expiries.clear();
      active.clear();
    },
  };
}
