import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { inject } from 'vitest';
import { openDatabase, type DatabaseHandle, type DialectName } from '../../src/store/database.js';

export interface DatabaseTarget {
  name: DialectName;
  /** false → the suite for this target is skipped (PostgreSQL unreachable and not required). */
  available: boolean;
  /** A fresh, empty database: a temp SQLite file or a new PostgreSQL schema, dropped on close. */
  open<DB = any>(): Promise<DatabaseHandle<DB> & { url?: string; dataDir: string; schema?: string }>;
}

export function postgresUrl(): string {
  return inject('postgresUrl');
}

export function tempDir(prefix = 'convault-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function uniqueSchema(): string {
  return `t_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
}

export const sqliteTarget: DatabaseTarget = {
  name: 'sqlite',
  available: true,
  async open() {
    const dataDir = tempDir();
    const handle = await openDatabase<any>({ dataDir });
    return {
      ...handle,
      dataDir,
      close: async () => {
        await handle.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

export const postgresTarget: DatabaseTarget = {
  name: 'postgres',
  get available() {
    return postgresUrl() !== '';
  },
  async open() {
    const url = postgresUrl();
    const schema = uniqueSchema();
    const dataDir = tempDir();
    const handle = await openDatabase<any>({ url, dataDir, schema });
    return {
      ...handle,
      url,
      schema,
      dataDir,
      close: async () => {
        await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(handle.db).catch(() => undefined);
        await handle.close();
        fs.rmSync(dataDir, { recursive: true, force: true });
      },
    };
  },
};

export const databaseTargets: DatabaseTarget[] = [sqliteTarget, postgresTarget];
