// Statements prepared once. Kysely's drivers prepare (SQLite) or parse (PostgreSQL) every query
// again on every execution; on the request path that cost more than the queries themselves.
// Both wrappers sit under Kysely, so every DAL gets the cache without changing a query.
//
// Correct across schema changes: a statement that defines or changes the schema (create, alter,
// drop) run through a wrapper starts a new schema generation, and nothing prepared under an older
// generation is used again. A schema changed by another process is handled by the databases
// themselves (SQLite re-prepares a statement whose schema changed; PostgreSQL re-plans, and the
// one error it can still give — a changed result type — clears that connection's statements).

import type { SqliteDatabase, SqliteStatement } from 'kysely';
import type pg from 'pg';

export const DEFAULT_MAX_STATEMENTS = 256;

/** What the cache did; `executed` counts every statement sent to the database (docs/BENCHMARKS.md counts per request). */
export interface StatementCacheStats {
  /** Statements held now (SQLite: in total; PostgreSQL: the largest count on one connection). */
  size: number;
  hits: number;
  misses: number;
  evictions: number;
  executed: number;
  /** Schema generation: bumped by every schema-changing statement run through the wrapper. */
  generation: number;
}

const SCHEMA_CHANGE = /^\s*(create|alter|drop)\b/i;

export function changesSchema(sqlText: string): boolean {
  return SCHEMA_CHANGE.test(sqlText);
}

/** A least-recently-used map with a hard bound; `onEvict` sees every entry that leaves. */
export class BoundedLru<K, V> {
  readonly #map = new Map<K, V>();
  constructor(
    readonly max: number,
    private readonly onEvict: (key: K, value: V) => void = () => undefined,
  ) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`statement cache size must be a positive integer, got ${max}`);
  }
  get size(): number {
    return this.#map.size;
  }
  get(key: K): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      // Re-insert: a Map iterates in insertion order, so the first key is the least recently used.
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.max) {
      const [oldest, evicted] = this.#map.entries().next().value as [K, V];
      this.#map.delete(oldest);
      this.onEvict(oldest, evicted);
    }
  }
  clear(): void {
    for (const [key, value] of this.#map) this.onEvict(key, value);
    this.#map.clear();
  }
}

export interface CachedSqlite extends SqliteDatabase {
  stats(): StatementCacheStats;
}

/**
 * The better-sqlite3 database as Kysely's SqliteDialect sees it, with `prepare` answered from a
 * bounded LRU of prepared statements keyed by SQL text. Kysely runs one statement at a time on
 * SQLite's single connection, so a cached statement is never used by two queries at once.
 */
export function cachedSqliteDatabase(
  sqlite: { prepare(sql: string): SqliteStatement; close(): void },
  maxStatements = DEFAULT_MAX_STATEMENTS,
): CachedSqlite {
  const stats: StatementCacheStats = { size: 0, hits: 0, misses: 0, evictions: 0, executed: 0, generation: 0 };
  const cache = new BoundedLru<string, SqliteStatement>(maxStatements, () => void stats.evictions++);
  const counted = (stmt: SqliteStatement): SqliteStatement => ({
    get reader() {
      return stmt.reader;
    },
    all: (p) => (stats.executed++, stmt.all(p)),
    run: (p) => (stats.executed++, stmt.run(p)),
    iterate: (p) => (stats.executed++, stmt.iterate(p)),
  });
  return {
    prepare(sqlText) {
      if (changesSchema(sqlText)) {
        // Statements prepared against the old schema are dropped; the DDL itself is not worth keeping.
        cache.clear();
        stats.generation++;
        stats.misses++;
        return counted(sqlite.prepare(sqlText));
      }
      let stmt = cache.get(sqlText);
      if (stmt) stats.hits++;
      else {
        stats.misses++;
        stmt = counted(sqlite.prepare(sqlText));
        cache.set(sqlText, stmt);
      }
      return stmt;
    },
    close() {
      cache.clear();
      sqlite.close();
    },
    stats: () => ({ ...stats, size: cache.size }),
  };
}

type PgQueryResult = pg.QueryResult<any>;
interface PgClientLike {
  query(config: pg.QueryConfig | string, values?: unknown[]): Promise<PgQueryResult>;
  release(err?: Error | boolean): void;
}
interface PgPoolLike {
  connect(): Promise<PgClientLike>;
  end(): Promise<void>;
}

/** Per connection: SQL text → name of the statement prepared on it, and the schema generation they belong to. */
interface ConnectionStatements {
  names: BoundedLru<string, string>;
  generation: number;
  /** Names evicted from `names`, deallocated before the connection's next statement. */
  evicted: string[];
  /** Set when the server refused a cached plan; the connection's statements are all dropped before its next one. */
  stale: boolean;
}

export interface PreparingPool extends PgPoolLike {
  stats(): StatementCacheStats;
}

/**
 * The pg pool as Kysely's PostgresDialect sees it, with every parameterised statement sent as a
 * named prepared statement: PostgreSQL parses and plans it once per connection, and pg then sends
 * only Bind/Execute. At most `maxStatements` per connection; the least recently used is
 * deallocated when another must be prepared.
 */
export function preparingPool(pool: PgPoolLike, maxStatements = DEFAULT_MAX_STATEMENTS): PreparingPool {
  const stats: StatementCacheStats = { size: 0, hits: 0, misses: 0, evictions: 0, executed: 0, generation: 0 };
  const perClient = new WeakMap<PgClientLike, { wrapper: PgClientLike; statements: ConnectionStatements }>();
  let nextName = 0;

  function wrap(client: PgClientLike) {
    const statements: ConnectionStatements = {
      generation: stats.generation,
      evicted: [],
      stale: false,
      names: new BoundedLru<string, string>(maxStatements, (_sql, name) => {
        stats.evictions++;
        statements.evicted.push(name);
      }),
    };
    async function prepareConnection(): Promise<void> {
      if (statements.stale || statements.generation !== stats.generation) {
        statements.names.clear();
        statements.evicted.length = 0;
        statements.generation = stats.generation;
        statements.stale = false;
        stats.executed++;
        await client.query('deallocate all');
        return;
      }
      while (statements.evicted.length > 0) {
        const name = statements.evicted.shift()!;
        stats.executed++;
        await client.query(`deallocate ${name}`);
      }
    }
    const wrapper: PgClientLike = {
      async query(text, values) {
        if (typeof text !== 'string') return client.query(text, values);
        stats.executed++;
        const params = values ?? [];
        if (changesSchema(text)) {
          stats.generation++;
          return client.query(text, params);
        }
        // Statements without parameters (begin, commit, savepoints) cost nothing to parse and vary in name.
        if (params.length === 0) return client.query(text, params);
        await prepareConnection();
        let name = statements.names.get(text);
        if (name) stats.hits++;
        else {
          stats.misses++;
          name = `cv_s${(nextName++).toString(36)}`;
          statements.names.set(text, name);
          stats.size = Math.max(stats.size, statements.names.size);
        }
        try {
          return await client.query({ name, text, values: params });
        } catch (err) {
          // 0A000 "cached plan must not change result type": another process changed the schema.
          if ((err as { code?: string }).code === '0A000') statements.stale = true;
          throw err;
        }
      },
      release: (err) => client.release(err),
    };
    return { wrapper, statements };
  }

  return {
    async connect() {
      const client = await pool.connect();
      let entry = perClient.get(client);
      if (!entry) {
        entry = wrap(client);
        perClient.set(client, entry);
      }
      return entry.wrapper;
    },
    end: () => pool.end(),
    stats: () => ({ ...stats }),
  };
}
