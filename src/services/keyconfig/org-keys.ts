import type { KeyConfigurationType, KeyProvider } from '../../providers/key-provider.js';
import { KeyProviderError } from '../../providers/key-provider.js';
import type { ProviderFactory, ProviderFields } from '../../providers/provider-factory.js';
import type { KeyConfigDal } from './keyconfig-dal.js';
import { parseStoredFields } from './keyconfig-model.js';
import type { SecretBox } from './secret-box.js';

/**
 * The organization's keys as providers: the one a configuration names (for its Test), and the one
 * behind any key reference recorded with a data key (for reads and rewraps long after the
 * configuration moved on). A reference that needs credentials (an XKS key) is opened with the
 * newest saved configuration that resolved to it, its secrets unsealed only into the adapter.
 * Adapters are kept per organization and reference, and looked up again after `refreshMs`, so a
 * PUT that rotates the proxy credentials takes effect on every node within that time.
 */

export interface OrgKeysDeps {
  dal: Pick<KeyConfigDal, 'findByKeyRef'>;
  factory: Pick<ProviderFactory, 'forConfiguration' | 'forReference'>;
  secrets: Pick<SecretBox, 'open'>;
  refreshMs: number;
  /** Adapters kept at most (default 10,000): the least recently looked up goes first. */
  maxEntries?: number;
  clock?: () => number;
}

export type OrgKeys = ReturnType<typeof createOrgKeys>;

/** A stored configuration's fields (url, the public fields, the unsealed secrets) for its adapter. */
export async function storedFields(
  secrets: Pick<SecretBox, 'open'>,
  orgId: string,
  row: { config_id: string; url: string; fields: string | null; sealed_secrets: Buffer | null },
): Promise<ProviderFields> {
  const fields: ProviderFields = { url: row.url, ...parseStoredFields(row.fields).public };
  if (row.sealed_secrets) Object.assign(fields, await secrets.open(orgId, row.config_id, row.sealed_secrets));
  return fields;
}

/** A replaced adapter may still be in a call that began before: it is closed once such calls are over. */
const RETIRE_AFTER_MS = 60_000;

function retire(provider: KeyProvider): void {
  if (!provider.close) return;
  setTimeout(() => provider.close?.(), RETIRE_AFTER_MS).unref();
}

export function createOrgKeys(deps: OrgKeysDeps) {
  const clock = deps.clock ?? Date.now;
  const cache = new Map<string, { provider: KeyProvider; stamp: string; checkedAt: number }>();

  async function lookup(orgId: string, reference: string): Promise<{ provider: KeyProvider; stamp: string } | undefined> {
    const direct = deps.factory.forReference(reference);
    if (direct) return { provider: direct, stamp: 'reference' };
    const row = await deps.dal.findByKeyRef(orgId, reference);
    if (!row) return undefined;
    const stamp = `${row.config_id}:${row.version}`;
    const cached = cache.get(`${orgId}\n${reference}`);
    if (cached && cached.stamp === stamp) return cached;
    return { provider: deps.factory.forConfiguration(row.type, await storedFields(deps.secrets, orgId, row)), stamp };
  }

  return {
    /** The adapter of an unsaved configuration (the Test). The caller closes it. */
    forConfiguration(type: KeyConfigurationType, fields: ProviderFields): KeyProvider {
      return deps.factory.forConfiguration(type, fields);
    },

    /** The adapter that opens data keys recorded under `reference` (a key ARN, an alias, an XKS key reference). */
    async forReference(orgId: string, reference: string): Promise<KeyProvider> {
      const key = `${orgId}\n${reference}`;
      const cached = cache.get(key);
      if (cached && clock() - cached.checkedAt < deps.refreshMs) return cached.provider;
      const found = await lookup(orgId, reference);
      if (!found) {
        throw new KeyProviderError('Misconfigured', `No saved key configuration of this organization names ${reference}; the data keys it wraps cannot be opened.`, {
          providerError: 'UnknownKeyReference',
        });
      }
      if (cached && cached.provider !== found.provider) retire(cached.provider);
      cache.delete(key);
      cache.set(key, { ...found, checkedAt: clock() });
      // Insertion order is lookup order: the first entry is the one looked up longest ago.
      for (const [oldKey, old] of cache) {
        if (cache.size <= (deps.maxEntries ?? 10_000)) break;
        cache.delete(oldKey);
        retire(old.provider);
      }
      return found.provider;
    },

    close(): void {
      for (const entry of cache.values()) entry.provider.close?.();
      cache.clear();
    },
  };
}
