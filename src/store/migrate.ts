import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import type { DialectName } from './database.js';

/** A migration that may need to know the dialect (binary and integer column types differ). */
export type DialectMigration = (dialect: DialectName) => Migration;

export interface MigrationSet {
  /** Table that records what ran; each component owns one, so they migrate independently. */
  tableName: string;
  migrations: Record<string, DialectMigration>;
}

export async function runMigrations(db: Kysely<any>, dialect: DialectName, set: MigrationSet): Promise<string[]> {
  const migrations: Record<string, Migration> = {};
  for (const [name, make] of Object.entries(set.migrations)) migrations[name] = make(dialect);
  // Kysely looks for its tables in every schema unless told which: another schema's tables in the
  // same database would make it skip creating ours.
  const schema =
    dialect === 'postgres'
      ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db)).rows[0]?.schema
      : undefined;
  const migrator = new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    ...(schema ? { migrationTableSchema: schema } : {}),
    migrationTableName: set.tableName,
    migrationLockTableName: `${set.tableName}_lock`,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error');
    throw new Error(`migration ${failed?.migrationName ?? '?'} of ${set.tableName} failed: ${(error as Error).message ?? error}`);
  }
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** Column types that differ between SQLite and PostgreSQL. */
export function columnTypes(dialect: DialectName) {
  return {
    binary: dialect === 'postgres' ? ('bytea' as const) : ('blob' as const),
    /** Millisecond timestamps and counters. */
    bigint: dialect === 'postgres' ? ('bigint' as const) : ('integer' as const),
  };
}
