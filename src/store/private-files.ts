import fs from 'node:fs';

/**
 * The data dir holds the database, the local KMS root key and admin secret, and the admin token:
 * nobody but the service's own user may read any of it, whatever the umask, and a data dir or file
 * an earlier build left readable to others is tightened on the next start.
 */

export function ensurePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/** Tightens an existing file to 0600; absent files are left absent. */
export function ensurePrivateFile(file: string): void {
  try {
    fs.chmodSync(file, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** An SQLite database and its WAL and shared-memory files (SQLite gives those the database file's mode). */
export function ensurePrivateSqliteFiles(file: string): void {
  if (!fs.existsSync(file)) fs.closeSync(fs.openSync(file, 'a', 0o600));
  for (const f of [file, `${file}-wal`, `${file}-shm`, `${file}-journal`]) ensurePrivateFile(f);
}
