import { describe, expect, it } from 'vitest';
import { isKeyProviderError, type KeyConfigurationType, type KeyProvider } from '../../providers/key-provider.js';
import type { ProviderFields } from '../../providers/provider-factory.js';
import { createOrgKeys } from './org-keys.js';

const ORG = 'org-1';
const XKS_REF = 'https://xks.example.com/kms/xks/v1/keys/k1';
const ALIAS = 'arn:aws:kms:us-east-1:111122223333:alias/a';

/** The module's own dependencies, as small stand-ins: a configuration store and an adapter factory that records what it built. */
function setup(maxEntries?: number) {
  let now = 0;
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
});
