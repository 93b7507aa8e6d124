import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import { ensurePrivateDir, ensurePrivateFile } from '../../store/private-files.js';
import type { Database } from '../../store/schema.js';
import { createAuditService } from '../audit/audit-service.js';
import { PERMISSIONS } from '../auth/permissions.js';
import { createTokenService } from '../auth/token-service.js';
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
  clock?: () => number;
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
    const now = (input.clock ?? Date.now)();
    await orgDal.insertOrganization({ id: orgId, name: BOOTSTRAP_ORG_NAME, created_at: now });
    const tokens = createTokenService({ db: trx, audit: createAuditService({ db: trx }), platformOrgId: async () => orgId, ...(input.clock ? { clock: input.clock } : {}) });
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
