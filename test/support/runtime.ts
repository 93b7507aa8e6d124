import fs from 'node:fs';
import pg from 'pg';
import { loadConfig, type Env } from '../../src/config.js';
import { startRuntime, type Runtime } from '../../src/server/runtime.js';
import { postgresUrl, tempDir, uniqueSchema, type DatabaseTarget } from './databases.js';

export interface TestServer {
  runtime: Runtime;
  url: string;
  adminToken: string;
  dataDir: string;
  databaseUrl?: string;
  /** Bearer-authenticated JSON call against the server. */
  call(method: string, path: string, opts?: { token?: string | null; body?: unknown; rawBody?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; headers: Headers }>;
  close(): Promise<void>;
}

/** A real runtime (HTTP on a free loopback port) on a fresh database of the given target. */
export async function startTestServer(target: DatabaseTarget['name'], env: Env = {}): Promise<TestServer> {
  const dataDir = env.CONVAULT_DATA_DIR ?? tempDir();
  const schema = target === 'postgres' ? uniqueSchema() : undefined;
  const databaseUrl = schema ? `${postgresUrl()}?schema=${schema}` : undefined;
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    CONVAULT_DATA_DIR: dataDir,
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...env,
  });
  const runtime = await startRuntime(config);
  const adminToken = fs.readFileSync(`${dataDir}/admin-token`, 'utf8').trim();
  const url = runtime.url;
  return {
    runtime,
    url,
    adminToken,
    dataDir,
    databaseUrl,
    async call(method, path, opts = {}) {
      const token = opts.token === undefined ? adminToken : opts.token;
      const headers: Record<string, string> = { ...(opts.headers ?? {}) };
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let body: string | undefined;
      if (opts.rawBody !== undefined) body = opts.rawBody;
      else if (opts.body !== undefined) body = JSON.stringify(opts.body);
      if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // not JSON: keep the text
      }
      return { status: res.status, body: parsed, headers: res.headers };
    },
    async close() {
      await runtime.close();
      if (schema) await dropSchema(schema);
      if (!env.CONVAULT_DATA_DIR) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl() });
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema}" cascade`);
  } finally {
    await client.end();
  }
}

/** Creates an organization and a token with `permissions` through the admin API. */
export async function createOrgWithToken(server: TestServer, name: string, permissions: string[]): Promise<{ orgId: string; token: string }> {
  const org = await server.call('POST', '/api/v2/admin/organizations', { body: { name } });
  if (org.status !== 201) throw new Error(`create org failed: ${JSON.stringify(org.body)}`);
  const tok = await server.call('POST', `/api/v2/admin/organizations/${org.body.id}/tokens`, { body: { permissions } });
  if (tok.status !== 201) throw new Error(`create token failed: ${JSON.stringify(tok.body)}`);
  return { orgId: org.body.id, token: tok.body.token };
}

/** Adds a token for an existing organization. */
export async function createToken(server: TestServer, orgId: string, permissions: string[]): Promise<string> {
  const tok = await server.call('POST', `/api/v2/admin/organizations/${orgId}/tokens`, { body: { permissions } });
  if (tok.status !== 201) throw new Error(`create token failed: ${JSON.stringify(tok.body)}`);
  return tok.body.token;
}
