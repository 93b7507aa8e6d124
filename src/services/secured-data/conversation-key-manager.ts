import { createKeyCache, type CacheObserver, generateConversationKey, isEnvelopeError, KEY_LENGTH, unwrapConversationKey, wrapConversationKey } from '../../crypto/index.js';
import type { ConversationKeysTable, OrgDataKeysTable } from '../../store/schema.js';
import type { ActiveKey } from '../keyconfig/keyconfig-service.js';
import type { DataKeyManager } from './data-key-manager.js';
import { dataIntegrityError } from './errors.js';

export interface ConversationKeySettings {
  cacheMaxAgeMs: number;
  cacheMaxEntries: number;
}

export interface ConversationKeyManagerDeps {
  dataKeys: Pick<DataKeyManager, 'activeKey' | 'unlock'>;
  settings: ConversationKeySettings;
  clock?: () => number;
  cacheObserver?: CacheObserver;
}

/** A conversation key made for a write, not yet stored. The caller owns `plaintext`. */
export interface NewConversationKey {
  row: ConversationKeysTable;
  dataKey: OrgDataKeysTable;
  activeKey: ActiveKey;
  plaintext: Buffer;
  /** The data key's cache expiry, which caps how long this key may be cached. */
  expiresAt: number;
}

export type ConversationKeyManager = ReturnType<typeof createConversationKeyManager>;

const SEP = '\n'; // conversation ids and org ids never contain it

type WrappedRow = Pick<ConversationKeysTable, 'data_key_id' | 'wrapped'>;

/** A copy in its own 32-byte allocation, which the cache owns and zeroes on eviction. */
function copyKey(key: Buffer): Buffer {
  const copy = Buffer.alloc(KEY_LENGTH);
  key.copy(copy);
  return copy;
}

/**
 * Conversation keys: made under the org's active data key, opened (unwrapped) with the data key
 * they name, and cached — LRU, max entries, and never past the cache expiry of the data key that
 * unwrapped them, so a revoked CMK also stops a hot conversation within the max age.
 *
 * Next to each cached key the manager keeps the wrapped bytes and data key id it was unwrapped
 * from (not secret). A lookup serves the key only if the row it is asked for holds exactly those, so
 * a conversation re-keyed, shredded or altered anywhere (on this node or another) never gets a stale
 * key: every read and write starts from the row in the database. (The fingerprint is not part of the
 * cache key on purpose: hashing a 160-character key on every lookup costs more than the comparison.)
 */
export function createConversationKeyManager(deps: ConversationKeyManagerDeps) {
  const clock = deps.clock ?? Date.now;
  const maxEntries = deps.settings.cacheMaxEntries;
  const cache = createKeyCache<string>({ maxAgeMs: deps.settings.cacheMaxAgeMs, maxEntries, now: clock, observer: deps.cacheObserver });
  const fingerprints = new Map<string, { wrapped: Buffer; dataKeyId: string }>();
  const cacheKey = (orgId: string, conversationId: string) => `${orgId}${SEP}${conversationId}`;

  /** The cached key for exactly this row (a copy in its own allocation, which the caller zeroes). */
  function peek(orgId: string, conversationId: string, row: WrappedRow): Buffer | undefined {
    const id = cacheKey(orgId, conversationId);
    const fingerprint = fingerprints.get(id);
    if (!fingerprint || fingerprint.dataKeyId !== row.data_key_id || !fingerprint.wrapped.equals(row.wrapped)) return undefined;
    const key = cache.get(id);
    if (!key) fingerprints.delete(id);
    return key;
  }

  function put(row: WrappedRow, orgId: string, conversationId: string, key: Buffer, expiresAt: number): void {
    const id = cacheKey(orgId, conversationId);
    cache.set(id, copyKey(key), { expiresAt });
    fingerprints.set(id, { wrapped: Buffer.from(row.wrapped), dataKeyId: row.data_key_id });
    // The cache evicts on its own; drop fingerprints of keys it no longer holds (amortized: rarely).
    if (fingerprints.size > 2 * maxEntries) {
      const live = new Set<string>();
      cache.deleteWhere((k) => {
        live.add(k);
        return false;
      });
      for (const k of fingerprints.keys()) if (!live.has(k)) fingerprints.delete(k);
    }
  }

  return {
    peek,

    /** The conversation key in `row`: from the cache, or unwrapped with its data key (which may cost a KMS Decrypt). */
    async open(orgId: string, conversationId: string, row: WrappedRow, dataKey: OrgDataKeysTable): Promise<Buffer> {
      const hit = peek(orgId, conversationId, row);
      if (hit) return hit;
      const unlocked = await deps.dataKeys.unlock(orgId, dataKey);
      let plaintext: Buffer;
      try {
        plaintext = unwrapConversationKey({ dataKey: unlocked.plaintext, wrapped: row.wrapped, orgId, conversationId, dataKeyId: row.data_key_id });
      } catch (err) {
        if (isEnvelopeError(err)) throw dataIntegrityError(`the conversation key does not open: ${err.code}`, { conversationId });
        throw err;
      } finally {
        unlocked.plaintext.fill(0);
      }
      put(row, orgId, conversationId, plaintext, unlocked.expiresAt);
      return plaintext;
    },

    /** A fresh conversation key wrapped under the org's active data key (GenerateDataKey only when the window needs a new one). */
    async create(orgId: string, conversationId: string): Promise<NewConversationKey> {
      const { key: activeKey, dataKey } = await deps.dataKeys.activeKey(orgId);
      const plaintext = generateConversationKey();
      try {
        const wrapped = wrapConversationKey({ dataKey: dataKey.plaintext, conversationKey: plaintext, orgId, conversationId, dataKeyId: dataKey.row.id });
        return {
          row: { org_id: orgId, conversation_id: conversationId, data_key_id: dataKey.row.id, wrapped, created_at: clock() },
          dataKey: dataKey.row,
          activeKey,
          plaintext,
          expiresAt: dataKey.expiresAt,
        };
      } catch (err) {
        plaintext.fill(0);
        throw err;
      } finally {
        dataKey.plaintext.fill(0);
      }
    },

    /** Caches a conversation key that was just stored (a copy; the caller keeps its own). */
    remember(created: NewConversationKey): void {
      put(created.row, created.row.org_id, created.row.conversation_id, created.plaintext, created.expiresAt);
    },

    /** Drops (and zeroes) the cached key of a conversation. */
    forget(orgId: string, conversationId: string): void {
      const id = cacheKey(orgId, conversationId);
      cache.delete(id);
      fingerprints.delete(id);
    },

    get cachedCount(): number {
      return cache.size;
    },

    clear(): void {
      cache.clear();
      fingerprints.clear();
    },
  };
}
