import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, SqliteDialect, sql, type PostgresPool } from 'kysely';
import { withStoreFaultHandling } from './fault-handling-dialect.js';
import { describeDriverError } from './store-faults.js';
import { cachedSqliteDatabase, preparingPool, type StatementCacheStats } from './statement-cache.js';
import { ensurePrivateDir, ensurePrivateSqliteFiles } from './private-files.js';
import { SAFETY_NET_AUTOCHECKPOINT_PAGES, startWalCheckpointer, type WalCheckpointStats } from './wal-checkpointer.js';

export type DialectName = 'sqlite' | 'postgres';

export interface DatabaseHandle<DB> {
  db: Kysely<DB>;
  dialect: DialectName;
  /** Where the data lives, for log lines: a file path or the URL without credentials. */
  location: string;
  /** The statement cache under Kysely (src/store/statement-cache.ts). */
  statements(): StatementCacheStats;
  /** SQLite: who checkpoints the WAL and what it did (absent on PostgreSQL). */
  checkpoints?(): WalCheckpointStats;
  /** PostgreSQL pool connections (absent on SQLite, which has none). */
  poolStats?(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
  /** Where connection errors that reach no query are reported (default: a JSON line on stderr). */
  setLogger(logger: DatabaseLogger): void;
}

export interface DatabaseLogger {
  warn(obj: object, msg: string): void;
}

export interface OpenDatabaseOptions {
  /** postgres:// URL; absent → SQLite file `fileName` in `dataDir`. */
  url?: string;
  dataDir: string;
  fileName?: string;
  /** PostgreSQL schema to use (created if missing); tests use one per run so runs never collide. */
  schema?: string;
  poolSize?: number;
  /** SQLite: how long a writer waits for another writer's lock before the query fails as busy. */
  busyTimeoutMs?: number;
  /** PostgreSQL: how long opening a new connection may take before it counts as unreachable. */
  connectTimeoutMs?: number;
  /** SQLite only: FULL syncs the WAL at every commit (an acknowledged write survives an OS crash); NORMAL does not (it survives a process crash). */
  sqliteSynchronous?: 'FULL' | 'NORMAL';
  /** Prepared statements kept (SQLite: in all; PostgreSQL: per connection). */
  statementCacheSize?: number;
  /**
   * SQLite only: `background` checkpoints the WAL in a worker thread, off the event loop
   * (src/store/wal-checkpointer.ts); `inline` (default here: the local KMS's and the XKS proxy's small
   * databases need no thread of their own) leaves it to SQLite's automatic checkpoint inside commits.
   * The convault database follows CONVAULT_SQLITE_CHECKPOINT, whose default is `background`.
   */
  sqliteCheckpoint?: 'background' | 'inline';
  /** SQLite, background checkpoints: milliseconds between them (default 100). */
  sqliteCheckpointIntervalMs?: number;
}

const stderrLogger: DatabaseLogger = {
  warn: (obj, msg) => process.stderr.write(JSON.stringify({ level: 40, time: Date.now(), ...obj, msg }) + '\n'),
};

// int8 (bigint) columns hold millisecond timestamps and counters, all far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openDatabase<DB>(opts: OpenDatabaseOptions): Promise<DatabaseHandle<DB>> {
  if (opts.url) return openPostgres<DB>(opts.url, opts.schema, opts.poolSize ?? 10, opts.connectTimeoutMs ?? 5000, opts.statementCacheSize);
  ensurePrivateDir(opts.dataDir);
  const file = path.join(opts.dataDir, opts.fileName ?? 'convault.db');
  ensurePrivateSqliteFiles(file);
  const sqlite = new SQLite(file);
  // WAL lets the CLI write while a server holds the same file; busy_timeout waits out the other writer.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma(`synchronous = ${opts.sqliteSynchronous === 'FULL' ? 'FULL' : 'NORMAL'}`);
  ensurePrivateSqliteFiles(file); // the WAL and shm files exist now
  let logger = stderrLogger;
  const background = opts.sqliteCheckpoint === 'background';
  if (background) sqlite.pragma(`wal_autocheckpoint = ${SAFETY_NET_AUTOCHECKPOINT_PAGES}`);
  const checkpointer = background
    ? startWalCheckpointer({
        file,
        intervalMs: opts.sqliteCheckpointIntervalMs,
        onError: (message) => logger.warn({ database: 'sqlite', error: message }, 'WAL checkpoint worker failed; it is started again, and commits checkpoint meanwhile'),
      })
    : undefined;
  const database = cachedSqliteDatabase(sqlite, opts.statementCacheSize);
  const db = new Kysely<DB>({ dialect: withStoreFaultHandling(new SqliteDialect({ database })) });
  return {
    db,
    dialect: 'sqlite',
    location: file,
    statements: database.stats,
    checkpoints: () => checkpointer?.stats() ?? { mode: 'inline', runs: 0, framesCheckpointed: 0, restarts: 0, lastError: null },
    // The worker's connection goes first, so the serving connection, the last one, removes the WAL as it closes.
    close: async () => {
      await checkpointer?.close();
      await db.destroy();
    },
    setLogger: (next) => void (logger = next),
  };
}

async function openPostgres<DB>(
  rawUrl: string,
  schemaOption: string | undefined,
  max: number,
  connectTimeoutMs: number,
  statementCacheSize?: number,
): Promise<DatabaseHandle<DB>> {
  // `?schema=name` on the URL selects (and creates) a schema, so several deployments or test runs share one database.
  const parsed = new URL(rawUrl);
  const schema = schemaOption ?? (parsed.searchParams.get('schema') || undefined);
  parsed.searchParams.delete('schema');
  const url = parsed.toString();
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  // The connect timeout goes to each new connection only: pg-pool would apply its own option to
  // waiting for a free connection too, and a burst of requests queued behind a busy pool is load,
  // not an outage.
  class TimedConnectClient extends pg.Client {
    constructor(config?: pg.ClientConfig) {
      super({ ...config, connectionTimeoutMillis: connectTimeoutMs });
    }
  }
  const pool = new pg.Pool({
    Client: TimedConnectClient,
    connectionString: url,
    max,
    // Names convault's sessions in pg_stat_activity, for operators (and for terminating them).
    application_name: 'convault',
    // Finds connections a network fault left half-open, instead of waiting on them forever.
    keepAlive: true,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // Without listeners, an 'error' event ends the process. An idle client that hears the server's
  // termination notice (restart, pg_terminate_backend, idle timeout) is dropped by pg-pool, which
  // then emits 'error' on the pool: logged here. A checked-out client has no pool listener; its
  // error surfaces as the failure of its next query (a 503), and pg-pool drops it on release
  // because it is no longer queryable. Only code and message are logged: pg attaches its client,
  // password included, to the error.
  let logger = stderrLogger;
  pool.on('error', (err) => logger.warn({ database: 'postgres', ...describeDriverError(err) }, 'idle database connection lost; a new one is opened on next use'));
  pool.on('connect', (client) => client.on('error', () => undefined));
  const preparing = preparingPool(pool as never, statementCacheSize);
  const db = new Kysely<DB>({ dialect: withStoreFaultHandling(new PostgresDialect({ pool: preparing as unknown as PostgresPool })) });
  if (schema) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  const u = new URL(url);
  u.password = '';
  return {
    db,
    dialect: 'postgres',
    location: u.toString() + (schema ? ` (schema ${schema})` : ''),
    statements: preparing.stats,
    close: () => db.destroy(),
    setLogger: (next) => void (logger = next),
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
  };
}
