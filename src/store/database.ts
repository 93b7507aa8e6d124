import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';

export type DialectName = 'sqlite' | 'postgres';

export interface DatabaseHandle<DB> {
  db: Kysely<DB>;
  dialect: DialectName;
  /** Where the data lives, for log lines: a file path or the URL without credentials. */
  location: string;
  /** PostgreSQL pool connections (absent on SQLite, which has none). */
  poolStats?(): { total: number; idle: number; waiting: number };
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** postgres:// URL; absent → SQLite file `fileName` in `dataDir`. */
  url?: string;
  dataDir: string;
  fileName?: string;
  /** PostgreSQL schema to use (created if missing); tests use one per run so runs never collide. */
  schema?: string;
  poolSize?: number;
}

// int8 (bigint) columns hold millisecond timestamps and counters, all far below 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export async function openDatabase<DB>(opts: OpenDatabaseOptions): Promise<DatabaseHandle<DB>> {
  if (opts.url) return openPostgres<DB>(opts.url, opts.schema, opts.poolSize ?? 10);
  fs.mkdirSync(opts.dataDir, { recursive: true });
  const file = path.join(opts.dataDir, opts.fileName ?? 'convault.db');
  const sqlite = new SQLite(file);
  // WAL lets the CLI write while a server holds the same file; busy_timeout waits out the other writer.
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<DB>({ dialect: new SqliteDialect({ database: sqlite }) });
  return { db, dialect: 'sqlite', location: file, close: () => db.destroy() };
}

async function openPostgres<DB>(rawUrl: string, schemaOption: string | undefined, max: number): Promise<DatabaseHandle<DB>> {
  // `?schema=name` on the URL selects (and creates) a schema, so several deployments or test runs share one database.
  const parsed = new URL(rawUrl);
  const schema = schemaOption ?? (parsed.searchParams.get('schema') || undefined);
  parsed.searchParams.delete('schema');
  const url = parsed.toString();
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  const pool = new pg.Pool({
    connectionString: url,
    max,
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  if (schema) await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  const u = new URL(url);
  u.password = '';
  return {
    db,
    dialect: 'postgres',
    location: u.toString() + (schema ? ` (schema ${schema})` : ''),
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close: () => db.destroy(),
  };
}
