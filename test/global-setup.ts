import pg from 'pg';
import type { TestProject } from 'vitest/node';

/**
 * Decides once per run whether the PostgreSQL suites run. CONVAULT_TEST_DATABASE_URL set → they
 * must (an unreachable server fails the run); unset → the machine's default server is tried and a
 * missing one skips those suites with one line.
 */
const DEFAULT_URL = 'postgres://postgres@127.0.0.1:5432/test';

export default async function setup(project: TestProject) {
  const required = process.env.CONVAULT_TEST_DATABASE_URL;
  const url = required ?? DEFAULT_URL;
  let available = false;
  let reason = '';
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
    available = true;
  } catch (err) {
    reason = (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
  if (!available && required) {
    throw new Error(`CONVAULT_TEST_DATABASE_URL is set but PostgreSQL at ${redact(url)} is unreachable: ${reason}`);
  }
  project.provide('postgresUrl', available ? url : '');
  console.log(
    available
      ? `[convault tests] databases: sqlite + postgres (${redact(url)})`
      : `[convault tests] databases: sqlite only — PostgreSQL suites SKIPPED (${redact(url)} unreachable: ${reason})`,
  );
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

declare module 'vitest' {
  export interface ProvidedContext {
    postgresUrl: string;
  }
}
