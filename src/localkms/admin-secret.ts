import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ensurePrivateDir, ensurePrivateFile } from '../store/private-files.js';

/**
 * The bearer secret of the local KMS's admin endpoints: random, kept in `<dataDir>/localkms-admin.secret`
 * (0600), so whoever can read the data dir — the operator — can issue credentials, and nobody else.
 */

export const ADMIN_SECRET_FILE = 'localkms-admin.secret';

export function resolveLocalKmsAdminSecret(dataDir: string): string {
  const file = path.join(dataDir, ADMIN_SECRET_FILE);
  ensurePrivateDir(dataDir);
  try {
    // 'wx': if another process created it in the meantime, use theirs rather than overwrite it.
    fs.writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  ensurePrivateFile(file);
  return readLocalKmsAdminSecret(dataDir)!;
}

/** The secret of a local KMS started on this data dir; undefined when none was. */
export function readLocalKmsAdminSecret(dataDir: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dataDir, ADMIN_SECRET_FILE), 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
