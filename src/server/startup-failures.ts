import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, type Config } from '../config.js';
import { isStoreUnavailable } from '../store/store-faults.js';

/**
 * Start-up failures as one line that names the setting to change (a ConfigError: exit code 2),
 * instead of the raw `connect ECONNREFUSED` / `EADDRINUSE` / `unable to open database file` of the
 * layer that met them. Anything not recognised is passed on unchanged.
 */

const codeOf = (err: unknown): string | undefined => {
  // The store reports an unreachable database as StoreUnavailableError, with the driver's code kept.
  if (isStoreUnavailable(err)) return err.driverCode ?? 'ECONNREFUSED';
  const e = err as { code?: unknown; errors?: unknown[] };
  if (typeof e?.code === 'string') return e.code;
  // pg reports a host with several addresses as an AggregateError of per-address errors.
  return Array.isArray(e?.errors) ? codeOf(e.errors[0]) : undefined;
};

const NETWORK = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH']);
// PostgreSQL: invalid password / authorization, database does not exist, too many connections, starting up.
const POSTGRES_REFUSALS = new Set(['28P01', '28000', '3D000', '53300', '57P03']);
const NOT_WRITABLE = new Set(['EACCES', 'EPERM', 'EROFS', 'SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_PERM', 'ENOTDIR']);

function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

/** The database of DATABASE_URL could not be reached or refused us; or the SQLite file could not be opened. */
export function databaseFailure(err: unknown, config: Pick<Config, 'databaseUrl' | 'dataDir'>): ConfigError | undefined {
  const code = codeOf(err);
  const message = isStoreUnavailable(err)
    ? `${err.driverCode ?? err.reason} (${err.message.replace(/; retry shortly\.$/, '')})`
    : ((err as Error)?.message ?? String(err));
  if (config.databaseUrl) {
    if ((code && (NETWORK.has(code) || POSTGRES_REFUSALS.has(code))) || /connect|terminated|timeout/i.test(message)) {
      return new ConfigError(
        `Cannot use the database in DATABASE_URL (${withoutPassword(config.databaseUrl)}): ${message || code}. ` +
          'Check that PostgreSQL runs and accepts this user there, or unset DATABASE_URL for the embedded SQLite database.',
      );
    }
    return undefined;
  }
  if ((code && NOT_WRITABLE.has(code)) || /unable to open database file|readonly database/i.test(message)) {
    return dataDirNotWritable(config.dataDir, code ?? message);
  }
  return undefined;
}

function dataDirNotWritable(dataDir: string, reason: string): ConfigError {
  const user = (() => {
    try {
      return os.userInfo().username;
    } catch {
      return `uid ${process.getuid?.() ?? '?'}`;
    }
  })();
  return new ConfigError(
    `CONVAULT_DATA_DIR ${dataDir} is not writable (${reason}): user ${user} needs write and execute permission on it ` +
      '(convault keeps convault.db, admin-token and localkms-root.key there); fix its permissions or set CONVAULT_DATA_DIR (--data-dir) to a directory it may write.',
  );
}

/**
 * Creates the data dir if needed and proves it writable by creating and removing a file, before
 * anything is written there (access(2) would say yes to root even on a read-only mount).
 */
export function ensureWritableDataDir(dataDir: string): void {
  const probe = path.join(dataDir, `.convault-write-test-${process.pid}`);
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.writeFileSync(probe, '');
    fs.rmSync(probe, { force: true });
  } catch (err) {
    throw dataDirNotWritable(dataDir, codeOf(err) ?? (err as Error).message);
  }
}

/** The HTTP listener (PORT on HOST) could not be opened. */
export function listenFailure(err: unknown, config: Pick<Config, 'port' | 'host'>): ConfigError | undefined {
  const code = codeOf(err);
  if (code === 'EADDRINUSE') {
    return new ConfigError(`PORT ${config.port} is already in use on ${config.host} (EADDRINUSE): stop the program that holds it (another convault?) or set PORT (--port) to a free port.`);
  }
  if (code === 'EACCES') return new ConfigError(`PORT ${config.port} needs privileges this user lacks (EACCES): set PORT (--port) to 1024 or above.`);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EADDRNOTAVAIL' || code === 'EINVAL') {
    return new ConfigError(
      `Invalid HOST: cannot listen on ${JSON.stringify(config.host)} (${code}): set HOST (--host) to an address of this machine, such as 0.0.0.0 (every interface), 127.0.0.1 or ::1.`,
    );
  }
  return undefined;
}

/** The embedded local KMS could not listen on its port. */
export function localKmsListenFailure(err: unknown, config: Pick<Config, 'port' | 'kms'>): ConfigError | undefined {
  const code = codeOf(err);
  if (code !== 'EADDRINUSE' && code !== 'EACCES') return undefined;
  const port = config.kms.localPort;
  const chosenBy = config.kms.localPortSource === 'CONVAULT_LOCAL_KMS_PORT' ? 'CONVAULT_LOCAL_KMS_PORT' : `PORT+1 (PORT is ${config.port})`;
  return new ConfigError(
    `CONVAULT_LOCAL_KMS_PORT ${port}, the embedded local KMS's port (${chosenBy}), is ${code === 'EADDRINUSE' ? 'already in use' : 'not allowed for this user'} (${code}): ` +
      'another convault server probably runs here — stop it, or start this one with another PORT or CONVAULT_LOCAL_KMS_PORT.',
  );
}

/** Runs a start-up step; a failure `explain` recognises becomes its one-line ConfigError. */
export async function startupStep<T>(run: () => Promise<T>, explain: (err: unknown) => ConfigError | undefined): Promise<T> {
  try {
    return await run();
  } catch (err) {
    throw explain(err) ?? err;
  }
}
