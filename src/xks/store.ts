import type { Kysely } from 'kysely';
import type { KeyStatus, KeyUsage } from '../xks-protocol/index.js';

/** Queries on the proxy's tables. Rules (who may change what) live in the callers. */

export type KeyBackendName = 'software' | 'pkcs11';

export interface XksKeyRow {
  key_id: string;
  key_usage: string;
  key_status: KeyStatus;
  backend: KeyBackendName;
  material: Buffer | null;
  created_at: number;
  updated_at: number;
}

export interface XksCredentialRow {
  access_key_id: string;
  uri_path: string;
  secret: Buffer;
  created_at: number;
}

export interface XksDatabase {
  xks_keys: XksKeyRow;
  xks_credentials: XksCredentialRow;
}

export type XksStore = ReturnType<typeof createXksStore>;

export function parseKeyUsage(column: string): KeyUsage[] {
  return column === '' ? [] : (column.split(',') as KeyUsage[]);
}

export function createXksStore(db: Kysely<XksDatabase>) {
  return {
    async insertKey(row: XksKeyRow): Promise<void> {
      await db.insertInto('xks_keys').values(row).execute();
    },
    async findKey(keyId: string): Promise<XksKeyRow | undefined> {
      const row = await db.selectFrom('xks_keys').selectAll().where('key_id', '=', keyId).executeTakeFirst();
      return row && { ...row, material: row.material === null ? null : Buffer.from(row.material) };
    },
    /** Returns false when there is no such key. */
    async setKeyStatus(keyId: string, status: KeyStatus, now: number): Promise<boolean> {
      const res = await db.updateTable('xks_keys').set({ key_status: status, updated_at: now }).where('key_id', '=', keyId).executeTakeFirst();
      return Number(res.numUpdatedRows) > 0;
    },
    async insertCredential(row: XksCredentialRow): Promise<void> {
      await db.insertInto('xks_credentials').values(row).execute();
    },
    async findCredential(accessKeyId: string): Promise<XksCredentialRow | undefined> {
      const row = await db.selectFrom('xks_credentials').selectAll().where('access_key_id', '=', accessKeyId).executeTakeFirst();
      return row && { ...row, secret: Buffer.from(row.secret) };
    },
    /** Returns false when there is no such credential under that key store. */
    async deleteCredential(accessKeyId: string, uriPath: string): Promise<boolean> {
      const res = await db.deleteFrom('xks_credentials').where('access_key_id', '=', accessKeyId).where('uri_path', '=', uriPath).executeTakeFirst();
      return Number(res.numDeletedRows) > 0;
    },
    /** Oldest first. */
    async credentialsOf(uriPath: string): Promise<XksCredentialRow[]> {
      const rows = await db.selectFrom('xks_credentials').selectAll().where('uri_path', '=', uriPath).orderBy('created_at').orderBy('access_key_id').execute();
      return rows.map((r) => ({ ...r, secret: Buffer.from(r.secret) }));
    },
  };
}
