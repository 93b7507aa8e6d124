import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KmsCallError } from '../../kms/kms-failure.js';
import type { OrgDataKeysTable } from '../../store/schema.js';
import { AppError } from '../errors.js';
import type { ActiveKey } from '../keyconfig/keyconfig-service.js';
import { conversationBlock, createDataKeyManager, type DataKeySettings } from './data-key-manager.js';
import { createKeyErrorRecorder } from './key-errors.js';
import { createProviderFactory } from '../../providers/provider-factory.js';

/** The key layer over a KMS gateway: the AWS adapter, as the composition root wires it. */
function keysOver(gateway: ReturnType<typeof fakeKms>['gateway']) {
  const factory = createProviderFactory({
    aws: {
      gateway: gateway as never,
      platformAccountId: '444455556666',
      encryptionContextKey: 'ctx',
      allowedRegions: ['us-east-1'],
      defaultRegion: 'us-east-1',
      platformKeyArn: 'arn:aws:kms:us-east-1:444455556666:key/platform',
      bindDataKeyId: false,
    },
    xks: { policy: { allowHttpLoopback: false, allowPrivateNetworks: false }, platformId: '444455556666' },
  });
  return { forReference: async (_orgId: string, reference: string) => factory.forReference(reference)! };
}

const ORG = 'org-1';
const ALIAS_A = 'arn:aws:kms:us-east-1:111122223333:alias/a';
const ALIAS_B = 'arn:aws:kms:us-east-1:111122223333:alias/b';
const arnOf = (keyId: string) => keyId.replace(/alias\/(\w+)$/, 'key/$1-key');

/** A KMS stand-in: blobs are the plaintext behind a marker, bound to key and context; failures on demand. */
function fakeKms() {
  const calls = { generate: 0, decrypt: 0 };
  let failWith: KmsCallError | undefined;
  const blobs = new Map<string, { plaintext: Buffer; keyArn: string; context: string }>();
  return {
    calls,
    /** What a rewrap does: the same data key under another KMS key, as a new blob. */
    rewrap(blob: Buffer, keyArn: string): Buffer {
      const entry = blobs.get(blob.toString('hex'))!;
      const next = randomBytes(48);
      blobs.set(next.toString('hex'), { ...entry, keyArn });
      blobs.delete(blob.toString('hex')); // the old key is retired: its blob no longer decrypts
      return next;
    },
    fail(kind: KmsCallError['kind'] | undefined, awsName = 'DisabledException') {
      failWith = kind ? new KmsCallError(kind, awsName, `${awsName} (test)`, 'test') : undefined;
    },
    gateway: {
      async generateDataKey(keyId: string, context: Record<string, string>) {
        calls.generate++;
        await new Promise((r) => setTimeout(r, 5));
        if (failWith) throw failWith;
        const plaintext = randomBytes(32);
        const blob = randomBytes(48);
        blobs.set(blob.toString('hex'), { plaintext: Buffer.from(plaintext), keyArn: arnOf(keyId), context: JSON.stringify(context) });
        return { plaintext, ciphertextBlob: blob, keyArn: arnOf(keyId) };
      },
      async decrypt(blob: Buffer, context: Record<string, string>, keyId: string) {
        calls.decrypt++;
        await new Promise((r) => setTimeout(r, 5));
        if (failWith) throw failWith;
        const entry = blobs.get(blob.toString('hex'));
        if (!entry || entry.context !== JSON.stringify(context) || entry.keyArn !== keyId) {
          throw new KmsCallError('InvalidCiphertext', 'InvalidCiphertextException', 'bad blob', 'Decrypt');
        }
        return { plaintext: Buffer.from(entry.plaintext), keyArn: entry.keyArn };
      },
    },
  };
}

function setup(overrides: Partial<DataKeySettings> = {}) {
  let now = 1_000_000;
  const clock = () => now;
  const kms = fakeKms();
  const rows: OrgDataKeysTable[] = [];
  let active: ActiveKey = { type: 'KmsSymmetric', keyId: ALIAS_A, version: 1 };
  const lastErrors: Array<Record<string, unknown> | null> = [];
  const settings: DataKeySettings = {
    platformAccountId: '444455556666',
    encryptionContextKey: 'ctx',
    defaultRegion: 'us-east-1',
    rotateMs: 3_600_000,
    maxConversations: 3,
    cacheMaxAgeMs: 60_000,
    cacheMaxEntries: 100,
    ...overrides,
  };
  const dal = {
    async findDataKey(orgId: string, id: string) {
      const row = rows.find((r) => r.org_id === orgId && r.id === id);
      return row ? { ...row } : undefined;
    },
    async insertDataKey(row: OrgDataKeysTable) {
      rows.push({ ...row });
    },
    reserveCalls: 0,
    async reserveConversations(orgId: string, id: string, n: number, max: number) {
      dal.reserveCalls++;
      const row = rows.find((r) => r.org_id === orgId && r.id === id && r.shredded_at === null);
      if (!row || row.conversations >= max) return 0;
      const granted = Math.min(n, max - row.conversations);
      row.conversations += n;
      return granted;
    },
    async findReusableDataKey(orgId: string, q: { keyIdUsed: string; configVersion: number; configType: string; contextKey: string; createdAfter: number; maxConversations: number }) {
      return rows
        .filter(
          (r) =>
            r.org_id === orgId &&
            r.key_id_used === q.keyIdUsed &&
            r.config_version === q.configVersion &&
            r.config_type === q.configType &&
            r.context_key === q.contextKey &&
            r.created_at > q.createdAfter &&
            r.conversations < q.maxConversations &&
            r.shredded_at === null,
        )
        .sort((a, b) => b.created_at - a.created_at)[0];
    },
  };
  const keyErrors = createKeyErrorRecorder({ keyConfigs: { recordLastError: async (_org, body) => void lastErrors.push(body) } });
  const manager = createDataKeyManager({
    dal,
    keys: keysOver(kms.gateway),
    keyConfigs: { resolveActiveKey: async () => active },
    keyErrors,
    settings,
    clock,
  });
  return {
    manager,
    kms,
    dal,
    clock,
    rows,
    lastErrors,
    advance: (ms: number) => void (now += ms),
    switchTo: (key: ActiveKey) => void (active = key),
  };
}

describe('org data keys', () => {
  it('concurrent first writes of one org share a single GenerateDataKey', async () => {
    const t = setup({ maxConversations: 1_000 });
    const results = await Promise.all(Array.from({ length: 25 }, () => t.manager.activeKey(ORG)));
    expect(t.kms.calls.generate).toBe(1);
    expect(new Set(results.map((r) => r.dataKey.row.id)).size).toBe(1);
    expect(t.rows).toHaveLength(1);
    expect(t.rows[0]).toMatchObject({ key_id_used: ALIAS_A, key_arn: arnOf(ALIAS_A), config_version: 1, config_type: 'KmsSymmetric', context_key: 'ctx' });
    // Every caller owns its own copy of the plaintext.
    results[0]!.dataKey.plaintext.fill(0);
    expect(results[1]!.dataKey.plaintext.equals(Buffer.alloc(32))).toBe(false);
  });

  it('replaces the active key after its time window, and after N conversations', async () => {
    const t = setup({ rotateMs: 60 * 60_000, cacheMaxAgeMs: 24 * 60 * 60_000 });
    const first = (await t.manager.activeKey(ORG)).dataKey.row.id;
    t.advance(59 * 60_000);
    expect((await t.manager.activeKey(ORG)).dataKey.row.id).toBe(first);
    t.advance(2 * 60_000);
    const second = (await t.manager.activeKey(ORG)).dataKey.row.id;
    expect(second).not.toBe(first);
    // Each call took one of its 3 conversations: two more, then it is full.
    for (let i = 0; i < 2; i++) expect((await t.manager.activeKey(ORG)).dataKey.row.id).toBe(second);
    const third = (await t.manager.activeKey(ORG)).dataKey.row.id;
    expect(third).not.toBe(second);
    expect(t.kms.calls.generate).toBe(3);
  });

  it('takes conversations from blocks reserved on the row: one row write per block, and the bound holds under concurrency', async () => {
    const t = setup({ maxConversations: 1_000 });
    const block = conversationBlock(1_000);
    expect(block).toBe(62);
    for (let i = 0; i < 200; i++) await t.manager.activeKey(ORG);
    // The first block came with the new row; 200 conversations needed three more.
    expect(t.dal.reserveCalls).toBe(3);
    expect(t.rows).toHaveLength(1);
    expect(t.rows[0]!.conversations).toBe(4 * block);

    const small = setup({ maxConversations: 10 });
    const given = await Promise.all(Array.from({ length: 25 }, () => small.manager.activeKey(ORG)));
    const perKey = new Map<string, number>();
    for (const g of given) perKey.set(g.dataKey.row.id, (perKey.get(g.dataKey.row.id) ?? 0) + 1);
    expect([...perKey.values()].every((n) => n <= 10)).toBe(true);
    expect(perKey.size).toBe(3);
  });

  it('never hands out a key made under an older key configuration', async () => {
    const t = setup();
    const a = (await t.manager.activeKey(ORG)).dataKey.row;
    t.switchTo({ type: 'KmsSymmetric', keyId: ALIAS_B, version: 2 });
    const b = (await t.manager.activeKey(ORG)).dataKey.row;
    expect(b.id).not.toBe(a.id);
    expect(b).toMatchObject({ key_id_used: ALIAS_B, config_version: 2 });
    // Same alias, new version (e.g. saved again after the alias was retargeted): new key too.
    t.switchTo({ type: 'KmsSymmetric', keyId: ALIAS_B, version: 3 });
    expect((await t.manager.activeKey(ORG)).dataKey.row.config_version).toBe(3);
    t.switchTo({ type: 'None', keyId: 'arn:aws:kms:us-east-1:444455556666:key/platform', version: 4 });
    expect((await t.manager.activeKey(ORG)).dataKey.row).toMatchObject({ config_type: 'None', config_version: 4 });
    expect(t.kms.calls.generate).toBe(4);
  });

  it('after the cache max age, unlocks the same data key with one Decrypt (not a new GenerateDataKey)', async () => {
    const t = setup({ cacheMaxAgeMs: 60_000, maxConversations: 1_000 });
    const row = (await t.manager.activeKey(ORG)).dataKey.row;
    t.advance(61_000);
    const again = await Promise.all(Array.from({ length: 10 }, () => t.manager.activeKey(ORG)));
    expect(again.every((r) => r.dataKey.row.id === row.id)).toBe(true);
    expect(t.kms.calls).toEqual({ generate: 1, decrypt: 1 });
    // Conversation keys unwrapped with it may be cached only until the data key's own expiry.
    expect(again[0]!.dataKey.expiresAt).toBe(1_000_000 + 61_000 + 60_000);
  });

  it('adopts a live data key another node made (Decrypt) instead of generating one', async () => {
    const t = setup();
    await t.manager.activeKey(ORG);
    // A second "node": same database rows and KMS, empty caches.
    const second = createDataKeyManager({
      dal: t.dal,
      clock: t.clock,
      keys: keysOver(t.kms.gateway),
      keyConfigs: { resolveActiveKey: async () => ({ type: 'KmsSymmetric', keyId: ALIAS_A, version: 1 }) },
      settings: { platformAccountId: '444455556666', encryptionContextKey: 'ctx', defaultRegion: 'us-east-1', rotateMs: 3_600_000, maxConversations: 3, cacheMaxAgeMs: 60_000, cacheMaxEntries: 10 },
    });
    const adopted = await second.activeKey(ORG);
    expect(adopted.dataKey.row.id).toBe(t.rows[0]!.id);
    expect(t.kms.calls).toEqual({ generate: 1, decrypt: 1 });
  });

  it('turns a disabled key into a 424 CustomerKeyUnavailable, records lastError once, clears it on recovery', async () => {
    const t = setup({ cacheMaxAgeMs: 1_000, maxConversations: 1_000 });
    await t.manager.activeKey(ORG);
    expect(t.lastErrors).toEqual([null]); // first success of the process clears whatever was recorded
    t.advance(2_000);
    t.kms.fail('Disabled', 'DisabledException');
    for (let i = 0; i < 3; i++) {
      const err = await t.manager.activeKey(ORG).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect(err).toMatchObject({ status: 424, errorType: 'CustomerKeyUnavailable' });
      expect((err as AppError).message).toMatch(/disabled/i);
    }
    expect(t.lastErrors).toHaveLength(2);
    expect(t.lastErrors[1]).toMatchObject({ errorType: 'CustomerKeyUnavailable', awsError: 'DisabledException' });
    t.kms.fail(undefined);
    await t.manager.activeKey(ORG);
    await t.manager.activeKey(ORG);
    expect(t.lastErrors).toEqual([null, expect.any(Object), null]);
  });

  it('maps a missing key to CustomerKeyNotFound (424) and an unreachable KMS to 503', async () => {
    const t = setup();
    t.kms.fail('NotFound', 'NotFoundException');
    await expect(t.manager.activeKey(ORG)).rejects.toMatchObject({ status: 424, errorType: 'CustomerKeyNotFound' });
    t.kms.fail('Unreachable', 'ECONNREFUSED');
    await expect(t.manager.activeKey(ORG)).rejects.toMatchObject({ status: 503, errorType: 'CustomerKeyUnavailable' });
    expect(t.rows).toHaveLength(0); // nothing stored when KMS fails
  });

  it('reports a blob KMS refuses as a data integrity error, and a shredded key as DataShredded', async () => {
    const t = setup({ cacheMaxAgeMs: 1_000, maxConversations: 1_000 });
    const row = (await t.manager.activeKey(ORG)).dataKey.row;
    t.advance(2_000);
    const altered = { ...row, wrapped_key: Buffer.from(row.wrapped_key!).fill(7, 0, 1) };
    await expect(t.manager.unlock(ORG, altered)).rejects.toMatchObject({ status: 500, errorType: 'DataIntegrityError' });
    await expect(t.manager.unlock('another-org', row)).rejects.toMatchObject({ errorType: 'DataIntegrityError' });
    await expect(t.manager.unlock(ORG, { ...row, shredded_at: 5, wrapped_key: null })).rejects.toMatchObject({ status: 404, errorType: 'DataShredded' });
  });

  it('forget() zeroes the cached plaintext, so the next use decrypts again', async () => {
    const t = setup();
    const row = (await t.manager.activeKey(ORG)).dataKey.row;
    expect(t.manager.cachedCount).toBe(1);
    t.manager.forget([row.id]);
    expect(t.manager.cachedCount).toBe(0);
    await t.manager.unlock(ORG, row);
    expect(t.kms.calls.decrypt).toBe(1);
  });

  it('re-reads the active key from the database before decrypting it again: another node may have rewrapped or shredded it', async () => {
    const t = setup({ cacheMaxAgeMs: 1_000, maxConversations: 1_000 });
    const first = (await t.manager.activeKey(ORG)).dataKey.row;
    // Another node rewraps it to key B.
    const stored = t.rows[0]!;
    stored.wrapped_key = t.kms.rewrap(stored.wrapped_key!, arnOf(ALIAS_B));
    stored.key_arn = arnOf(ALIAS_B);
    t.advance(2_000);
    const again = (await t.manager.activeKey(ORG)).dataKey.row;
    expect(again.id).toBe(first.id);
    expect(again.key_arn).toBe(arnOf(ALIAS_B));
    expect(t.kms.calls).toEqual({ generate: 1, decrypt: 1 });

    // Another node shreds it (time-window shred): this node makes a new one instead of using it.
    stored.shredded_at = 5;
    stored.wrapped_key = null;
    t.advance(2_000);
    const replaced = (await t.manager.activeKey(ORG)).dataKey.row;
    expect(replaced.id).not.toBe(first.id);
    expect(t.kms.calls.generate).toBe(2);
  });
});
