import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { ensurePrivateDir, ensurePrivateFile } from '../../store/private-files.js';
import type { Database } from '../../store/schema.js';
import { PERMISSIONS } from '../auth/permissions.js';
import type { TokenService } from '../auth/token-service.js';
import { createOrgDal } from './org-dal.js';
import { inTransaction } from '../../store/transactions.js';

export const BOOTSTRAP_ORG_NAME = 'Default organization';
const BOOTSTRAP_META_KEY = 'bootstrap.organization';

export type BootstrapResult =
  | { created: true; orgId: string; token: string; tokenFile: string }
  | { created: false; orgId: string | undefined };

/**
 * On the first start with an empty database: one organization and an admin principal holding every
 * permission. One transaction, guarded by a meta row, so two nodes starting together bootstrap once.
 */
export async function bootstrapIfEmpty(input: {
  db: Kysely<Database>;
  dataDir: string;
  token?: string;
  /** The token service on the bootstrap's transaction (the composition root's wiring, bound to `trx`). */
  tokensIn(trx: Kysely<Database>, platformOrgId: () => Promise<string>): Pick<TokenService, 'create'>;
}): Promise<BootstrapResult> {
  const existing = await createOrgDal(input.db).getMeta(BOOTSTRAP_META_KEY);
  if (existing) {
    ensurePrivateFile(path.join(input.dataDir, 'admin-token'));
    return { created: false, orgId: existing };
  }

  const orgId = randomUUID();
  const created = await inTransaction(input.db, async (trx) => {
    const orgDal = createOrgDal(trx);
    if (!(await orgDal.claimMeta(BOOTSTRAP_META_KEY, orgId))) return undefined;
    await orgDal.insertOrganization({ id: orgId, name: BOOTSTRAP_ORG_NAME, created_at: Date.now() });
    const tokens = input.tokensIn(trx, async () => orgId);
    return tokens.create({ principal: 'system:bootstrap' }, { orgId, name: 'admin', kind: 'user', permissions: [...PERMISSIONS], token: input.token });
  });
  if (!created) return { created: false, orgId: await createOrgDal(input.db).getMeta(BOOTSTRAP_META_KEY) };

  ensurePrivateDir(input.dataDir);
  const tokenFile = path.join(input.dataDir, 'admin-token');
  fs.writeFileSync(tokenFile, created.token + '\n', { mode: 0o600 });
  fs.chmodSync(tokenFile, 0o600);
  return { created: true, orgId, token: created.token, tokenFile };
}

export async function bootstrapOrganizationId(db: Kysely<Database>): Promise<string | undefined> {
  return createOrgDal(db).getMeta(BOOTSTRAP_META_KEY);
}
