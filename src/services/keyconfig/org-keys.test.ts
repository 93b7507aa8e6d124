import { afterEach, describe, expect, it, vi } from 'vitest';
import { isKeyProviderError, type KeyConfigurationType, type KeyProvider } from '../../providers/key-provider.js';
import type { ProviderFields } from '../../providers/provider-factory.js';
import { createOrgKeys, storedFields } from './org-keys.js';

const ORG = 'org-1';
const XKS_REF = 'https://xks.example.com/kms/xks/v1/keys/k1';
const ALIAS = 'arn:aws:kms:us-east-1:111122223333:alias/a';

/** The module's own dependencies, as small stand-ins: a configuration store and an adapter factory that records what it built. */
function setup(maxEntries?: number) {
  // Not 0: a clock that starts at 0 cannot tell `now - checkedAt` from `now + checkedAt`.
  let now = 1_000_000;
  const built: Array<{ type: KeyConfigurationType; fields: ProviderFields; closed: boolean }> = [];
  const rows = new Map<string, { config_id: string; version: number; type: KeyConfigurationType; url: string; fields: string | null; sealed_secrets: Buffer | null }>();
  const adapter = (type: KeyConfigurationType, fields: ProviderFields): KeyProvider => {
    const entry = { type, fields, closed: false };
    built.push(entry);
    return { type, reference: fields.url ?? '', close: () => void (entry.closed = true) } as unknown as KeyProvider;
  };
  const keys = createOrgKeys({
    dal: { findByKeyRef: async (orgId, ref) => (orgId === ORG ? rows.get(ref) : undefined) },
    factory: {
      forConfiguration: adapter,
      forReference: (ref) => (ref.startsWith('arn:') ? adapter('KmsSymmetric', { url: ref }) : undefined),
    },
    secrets: { open: async (_org, configId, sealed) => ({ apiKey: `${configId}:${sealed.toString()}` }) },
    refreshMs: 1000,
    ...(maxEntries ? { maxEntries } : {}),
    clock: () => now,
  });
  return { keys, rows, built, advance: (ms: number) => (now += ms) };
}

describe('org keys: the provider behind a recorded key reference', () => {
  it('opens an XKS reference with the newest saved configuration, its secret unsealed, and keeps it until the refresh', async () => {
    const t = setup();
    t.rows.set(XKS_REF, { config_id: 'c1', version: 1, type: 'LocalKeyManager', url: 'https://xks.example.com/kms/xks/v1', fields: JSON.stringify({ public: { keyId: 'k1', apiId: 'AKID' }, secrets: ['apiKey'] }), sealed_secrets: Buffer.from('s1') });
    const first = await t.keys.forReference(ORG, XKS_REF);
    expect(t.built[0]).toMatchObject({ type: 'LocalKeyManager', fields: { url: 'https://xks.example.com/kms/xks/v1', keyId: 'k1', apiId: 'AKID', apiKey: 'c1:s1' } });
    expect(await t.keys.forReference(ORG, XKS_REF)).toBe(first);

    // A PUT rotated the secret: within the refresh the old adapter still serves, after it the new one.
    t.rows.set(XKS_REF, { ...t.rows.get(XKS_REF)!, version: 2, sealed_secrets: Buffer.from('s2') });
    t.advance(500);
    expect(await t.keys.forReference(ORG, XKS_REF)).toBe(first);
    t.advance(600);
    const second = await t.keys.forReference(ORG, XKS_REF);
    expect(second).not.toBe(first);
    expect(t.built[1]!.fields.apiKey).toBe('c1:s2');
  });

  it('opens an AWS reference without any stored configuration', async () => {
    const t = setup();
    await t.keys.forReference(ORG, ALIAS);
    expect(t.built[0]).toMatchObject({ type: 'KmsSymmetric', fields: { url: ALIAS } });
  });

  it('refuses a reference no configuration of the organization names (another organization\'s key)', async () => {
    const t = setup();
    t.rows.set(XKS_REF, { config_id: 'c1', version: 1, type: 'LocalKeyManager', url: 'https://xks.example.com/kms/xks/v1', fields: null, sealed_secrets: null });
    const err = await t.keys.forReference('org-2', XKS_REF).catch((e: unknown) => e);
    expect(isKeyProviderError(err, 'Misconfigured')).toBe(true);
    expect((err as Error).message).toContain('No saved key configuration of this organization names');
  });

  it('keeps at most maxEntries adapters, dropping the one looked up longest ago', async () => {
    const t = setup(2);
    const a = await t.keys.forReference(ORG, `${ALIAS}1`);
    await t.keys.forReference(ORG, `${ALIAS}2`);
    await t.keys.forReference(ORG, `${ALIAS}3`);
    expect(await t.keys.forReference(ORG, `${ALIAS}1`)).not.toBe(a);
  });

  describe('when adapters are rebuilt, kept and closed', () => {
    afterEach(() => void vi.useRealTimers());
    const xksRow = (version: number, secret: string) => ({ config_id: 'c1', version, type: 'LocalKeyManager' as const, url: 'https://xks.example.com/kms/xks/v1', fields: JSON.stringify({ public: { keyId: 'k1' }, secrets: ['apiKey'] }), sealed_secrets: Buffer.from(secret) });

    it('looks the configuration up again exactly at the refresh, and keeps the adapter when the configuration did not change', async () => {
      const t = setup();
      t.rows.set(XKS_REF, xksRow(1, 's1'));
      const first = await t.keys.forReference(ORG, XKS_REF);
      t.rows.set(XKS_REF, xksRow(2, 's2'));
      t.advance(999);
      expect(await t.keys.forReference(ORG, XKS_REF)).toBe(first);
      t.advance(1);
      const second = await t.keys.forReference(ORG, XKS_REF);
      expect(second).not.toBe(first);
      // Unchanged after the next refresh: the same adapter, nothing built, nothing closed.
      t.advance(1000);
      expect(await t.keys.forReference(ORG, XKS_REF)).toBe(second);
      expect(t.built).toHaveLength(2);
    });

    it('closes a replaced adapter only after the calls it may still be in had time to end (60 s)', async () => {
      vi.useFakeTimers();
      const t = setup();
      t.rows.set(XKS_REF, xksRow(1, 's1'));
      await t.keys.forReference(ORG, XKS_REF);
      t.rows.set(XKS_REF, xksRow(2, 's2'));
      t.advance(1000);
      await t.keys.forReference(ORG, XKS_REF);
      vi.advanceTimersByTime(59_999);
      expect(t.built.map((b) => b.closed)).toEqual([false, false]);
      vi.advanceTimersByTime(1);
      expect(t.built.map((b) => b.closed)).toEqual([true, false]);
      // A refresh that finds the same configuration keeps the adapter in use: nothing is closed.
      t.advance(1000);
      await t.keys.forReference(ORG, XKS_REF);
      vi.advanceTimersByTime(60_000);
      expect(t.built.map((b) => b.closed)).toEqual([true, false]);
    });

    it('replaces and closes adapters that have no close of their own without failing', async () => {
      vi.useFakeTimers();
      const bare = (): KeyProvider => ({ type: 'KmsSymmetric' }) as unknown as KeyProvider;
      const keys = createOrgKeys({
        dal: { findByKeyRef: async () => undefined },
        factory: { forConfiguration: bare, forReference: bare },
        secrets: { open: async () => ({}) },
        refreshMs: 1000,
        maxEntries: 1,
      });
      await keys.forReference(ORG, `${ALIAS}1`);
      await keys.forReference(ORG, `${ALIAS}2`);
      vi.advanceTimersByTime(60_000);
      expect(() => keys.close()).not.toThrow();
    });

    it('keeps exactly maxEntries adapters, dropping the one looked up in the store longest ago, and closes it later', async () => {
      vi.useFakeTimers();
      const t = setup(2);
      const a = await t.keys.forReference(ORG, `${ALIAS}1`);
      const b = await t.keys.forReference(ORG, `${ALIAS}2`);
      // Two fit: both still served from memory (a use within the refresh is not a lookup).
      expect(await t.keys.forReference(ORG, `${ALIAS}1`)).toBe(a);
      expect(await t.keys.forReference(ORG, `${ALIAS}2`)).toBe(b);
      expect(t.built).toHaveLength(2);
      await t.keys.forReference(ORG, `${ALIAS}3`);
      expect(await t.keys.forReference(ORG, `${ALIAS}2`)).toBe(b);
      vi.advanceTimersByTime(59_999);
      expect(t.built.map((x) => x.closed)).toEqual([false, false, false]);
      vi.advanceTimersByTime(1);
      expect(t.built.map((x) => x.closed)).toEqual([true, false, false]);
      expect(await t.keys.forReference(ORG, `${ALIAS}1`)).not.toBe(a);
    });

    it('closes every adapter it holds at close, and builds new ones afterwards', async () => {
      const t = setup();
      t.rows.set(XKS_REF, xksRow(1, 's1'));
      const first = await t.keys.forReference(ORG, XKS_REF);
      await t.keys.forReference(ORG, ALIAS);
      t.keys.close();
      expect(t.built.map((b) => b.closed)).toEqual([true, true]);
      expect(await t.keys.forReference(ORG, XKS_REF)).not.toBe(first);
    });

    it('says which reference it cannot open, as a provider error an operator can search for', async () => {
      const t = setup();
      const err = await t.keys.forReference(ORG, XKS_REF).catch((e: unknown) => e);
      expect(err).toMatchObject({ details: { providerError: 'UnknownKeyReference' } });
      expect((err as Error).message).toBe(`No saved key configuration of this organization names ${XKS_REF}; the data keys it wraps cannot be opened.`);
    });

    it('builds an unsaved configuration as given (the Test) without keeping it', async () => {
      const t = setup();
      const provider = t.keys.forConfiguration('LocalKeyManager', { url: 'https://xks.example.com/kms/xks/v1', keyId: 'k9' });
      expect(t.built[0]).toMatchObject({ type: 'LocalKeyManager', fields: { keyId: 'k9' } });
      t.keys.close();
      expect(t.built[0]!.closed).toBe(false);
      provider.close?.();
    });
  });

  it('stored fields: the url, the public fields and the unsealed secrets; no secrets to open without sealed ones', async () => {
    const opened: string[] = [];
    const secrets = { open: async (orgId: string, configId: string) => (opened.push(`${orgId}/${configId}`), { apiKey: 'secret' }) };
    const fields = JSON.stringify({ public: { keyId: 'k1', apiId: 'AKID' }, secrets: ['apiKey'] });
    expect(await storedFields(secrets, ORG, { config_id: 'c1', url: 'https://x/kms/xks/v1', fields, sealed_secrets: Buffer.from('s') })).toEqual({ url: 'https://x/kms/xks/v1', keyId: 'k1', apiId: 'AKID', apiKey: 'secret' });
    expect(opened).toEqual([`${ORG}/c1`]);
    expect(await storedFields(secrets, ORG, { config_id: 'c2', url: ALIAS, fields: null, sealed_secrets: null })).toEqual({ url: ALIAS });
    expect(opened).toHaveLength(1);
  });
});

