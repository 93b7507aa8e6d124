import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { OrgDataKeysTable } from '../../store/schema.js';
import { createConversationKeyManager } from './conversation-key-manager.js';
import type { UnlockedDataKey } from './data-key-manager.js';

const ORG = 'org-1';
const dataKeyRow: OrgDataKeysTable = {
  id: 'dk-1',
  org_id: ORG,
  key_id_used: 'arn:aws:kms:us-east-1:111122223333:alias/a',
  key_arn: 'arn:aws:kms:us-east-1:111122223333:key/a',
  config_type: 'KmsSymmetric',
  config_version: 1,
  context_key: 'ctx',
  wrapped_key: Buffer.from('blob'),
  created_at: 0,
  conversations: 0,
  rewrapped_at: null,
  shredded_at: null,
};

function setup(dataKeyExpiresIn: number) {
  let now = 1_000;
  const material = randomBytes(32);
  let unlocks = 0;
  const dataKeys = {
    async unlock(): Promise<UnlockedDataKey> {
      unlocks++;
      return { row: dataKeyRow, plaintext: Buffer.from(material), expiresAt: now + dataKeyExpiresIn };
    },
    async activeKey() {
      return { key: { type: 'KmsSymmetric' as const, keyId: dataKeyRow.key_id_used, version: 1 }, dataKey: await this.unlock() };
    },
  };
  const manager = createConversationKeyManager({ dataKeys, settings: { cacheMaxAgeMs: 3_600_000, cacheMaxEntries: 100 }, clock: () => now });
  return { manager, advance: (ms: number) => void (now += ms), unlocks: () => unlocks };
}

describe('conversation keys', () => {
  it('wraps a fresh key under the active data key and opens it again', async () => {
    const t = setup(60_000);
    const created = await t.manager.create(ORG, 'conv-1');
    expect(created.row).toMatchObject({ org_id: ORG, conversation_id: 'conv-1', data_key_id: 'dk-1' });
    expect(created.row.wrapped).toHaveLength(61);
    const opened = await t.manager.open(ORG, 'conv-1', created.row, dataKeyRow);
    expect(opened.equals(created.plaintext)).toBe(true);
  });

  it('never caches a conversation key past the expiry of the data key that unwrapped it', async () => {
    const t = setup(1_000); // the data key's plaintext expires 1 s after it was unlocked …
    const created = await t.manager.create(ORG, 'conv-1');
    t.manager.remember(created);
    await t.manager.open(ORG, 'conv-1', created.row, dataKeyRow);
    expect(t.unlocks()).toBe(1); // served from the cache
    t.advance(1_001); // … although the conversation key cache itself would keep it an hour
    await t.manager.open(ORG, 'conv-1', created.row, dataKeyRow);
    expect(t.unlocks()).toBe(2); // had to go back to the data key (i.e. to KMS once it expired)
  });

  it('refuses a wrapped key that was altered or moved to another conversation', async () => {
    const t = setup(60_000);
    const created = await t.manager.create(ORG, 'conv-1');
    const altered = Buffer.from(created.row.wrapped);
    altered[20]! ^= 1;
    await expect(t.manager.open(ORG, 'conv-1', { ...created.row, wrapped: altered }, dataKeyRow)).rejects.toMatchObject({ errorType: 'DataIntegrityError' });
    await expect(t.manager.open(ORG, 'conv-2', created.row, dataKeyRow)).rejects.toMatchObject({ errorType: 'DataIntegrityError' });
    await expect(t.manager.open('org-2', 'conv-1', created.row, dataKeyRow)).rejects.toMatchObject({ errorType: 'DataIntegrityError' });
  });

  it('forget() drops every cached key of the conversation', async () => {
    const t = setup(60_000);
    const created = await t.manager.create(ORG, 'conv-1');
    t.manager.remember(created);
    expect(t.manager.cachedCount).toBe(1);
    t.manager.forget(ORG, 'conv-1');
    expect(t.manager.cachedCount).toBe(0);
  });

  it('serves a cached key only for the exact stored row, and stays bounded', async () => {
    const t = setup(60_000);
    const created = await t.manager.create(ORG, 'conv-1');
    t.manager.remember(created);
    expect(t.manager.peek(ORG, 'conv-1', created.row)?.equals(created.plaintext)).toBe(true);
    const altered = Buffer.from(created.row.wrapped);
    altered[60]! ^= 1;
    expect(t.manager.peek(ORG, 'conv-1', { ...created.row, wrapped: altered })).toBeUndefined();
    expect(t.manager.peek(ORG, 'conv-1', { ...created.row, data_key_id: 'dk-2' })).toBeUndefined();
    expect(t.manager.peek(ORG, 'conv-2', created.row)).toBeUndefined();
    // Far more conversations than the cache holds (100): old ones fall out, recent ones are served.
    const rows = [];
    for (let i = 0; i < 450; i++) {
      const c = await t.manager.create(ORG, `many-${i}`);
      t.manager.remember(c);
      rows.push(c);
    }
    expect(t.manager.cachedCount).toBeLessThanOrEqual(100);
    expect(t.manager.peek(ORG, 'many-0', rows[0]!.row)).toBeUndefined();
    expect(t.manager.peek(ORG, 'many-449', rows[449]!.row)?.equals(rows[449]!.plaintext)).toBe(true);
  });
});

