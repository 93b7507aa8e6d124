import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { accountRootArn } from './arns.js';
import type { PrincipalEntry } from './principals.js';
import { openWithRootKey, sealWithRootKey } from './root-key.js';

/**
 * Access keys the local KMS issues, one per account (like an operator creating an IAM access key for
 * that account's root): `AKIA…` ids and 40-character secrets, as AWS spells them. Rows live in the
 * local KMS's database, so nodes sharing it share the credentials; secrets are sealed under the root
 * key and opened only in memory.
 */

export interface AccessKey {
  accessKeyId: string;
  secretAccessKey: string;
}

interface CredentialRow {
  access_key_id: string;
  account_id: string;
  secret_sealed: Buffer;
  created_at: number;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const SEAL_LABEL = 'localkms-credential:';

export type CredentialStore = ReturnType<typeof createCredentialStore>;

export function createCredentialStore(anyDb: Kysely<any>, rootKey: Buffer, clock: () => number = Date.now) {
  const db = anyDb as Kysely<{ localkms_credentials: CredentialRow }>;
  // Issued keys never change, so a hit needs no database read; a miss is read (another node may have issued it).
  const known = new Map<string, PrincipalEntry & { secretAccessKey: string }>();

  const open = (row: CredentialRow) =>
    openWithRootKey(rootKey, SEAL_LABEL + row.access_key_id, Buffer.from(row.secret_sealed)).toString('utf8');

  return {
    /** The account's access key, created on the first call (concurrent first calls agree on one). */
    async issue(accountId: string): Promise<AccessKey> {
      const accessKeyId = `AKIA${Array.from(randomBytes(16), (b) => BASE32[b & 31]).join('')}`;
      const secret = randomBytes(30).toString('base64');
      await db
        .insertInto('localkms_credentials')
        .values({
          access_key_id: accessKeyId,
          account_id: accountId,
          secret_sealed: sealWithRootKey(rootKey, SEAL_LABEL + accessKeyId, Buffer.from(secret, 'utf8')),
          created_at: clock(),
        })
        .onConflict((oc) => oc.column('account_id').doNothing())
        .execute();
      const row = await db.selectFrom('localkms_credentials').selectAll().where('account_id', '=', accountId).executeTakeFirstOrThrow();
      return { accessKeyId: row.access_key_id, secretAccessKey: open(row) };
    },

    /** The principal and secret behind an issued access key id; undefined → not issued here. */
    async lookup(accessKeyId: string): Promise<(PrincipalEntry & { secretAccessKey: string }) | undefined> {
      const cached = known.get(accessKeyId);
      if (cached) return cached;
      const row = await db.selectFrom('localkms_credentials').selectAll().where('access_key_id', '=', accessKeyId).executeTakeFirst();
      if (!row) return undefined;
      const entry = { accessKeyId, secretAccessKey: open(row), arn: accountRootArn(row.account_id), accountId: row.account_id };
      known.set(accessKeyId, entry);
      return entry;
    },

    clear(): void {
      known.clear();
    },
  };
}
