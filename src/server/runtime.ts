import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { createAuthService } from '../services/auth/auth-service.js';
import { createTokenDal } from '../services/auth/token-dal.js';
import { bootstrapIfEmpty, type BootstrapResult } from '../services/orgs/bootstrap.js';
import { createOrgDal } from '../services/orgs/org-dal.js';
import { createOrgService } from '../services/orgs/org-service.js';
import { openDatabase, type DatabaseHandle } from '../store/database.js';
import { runMigrations } from '../store/migrate.js';
import { convaultMigrations } from '../store/migrations/index.js';
import type { Database } from '../store/schema.js';
import { VERSION } from '../version.js';
import { buildApp } from './app.js';

/** The composition root: opens the store, wires every service once, and serves HTTP. */
export interface Runtime {
  app: FastifyInstance;
  url: string;
  database: DatabaseHandle<Database>;
  bootstrap: BootstrapResult;
  close(): Promise<void>;
}

export async function openConvaultDatabase(config: Config): Promise<DatabaseHandle<Database>> {
  const database = await openDatabase<Database>({ url: config.databaseUrl, dataDir: config.dataDir });
  await runMigrations(database.db, database.dialect, convaultMigrations);
  return database;
}

export async function startRuntime(config: Config): Promise<Runtime> {
  const database = await openConvaultDatabase(config);
  const { db } = database;
  const orgDal = createOrgDal(db);
  const auth = createAuthService({ tokenDal: createTokenDal(db), orgDal });
  const orgs = createOrgService({ orgDal });
  const bootstrap = await bootstrapIfEmpty({ db, dataDir: config.dataDir, token: config.bootstrapToken });

  const app = await buildApp({
    services: { auth, orgs, pingDatabase: async () => void (await sql`select 1`.execute(db)) },
    bodyLimitBytes: config.bodyLimitBytes,
    version: VERSION,
    logger: {
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
    },
  });
  const address = await app.listen({ port: config.port, host: config.host });
  const port = (app.server.address() as { port: number }).port;
  const url = `http://${config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host}:${port}`;
  app.log.debug({ address }, 'listening');

  let closed = false;
  return {
    app,
    url,
    database,
    bootstrap,
    async close() {
      if (closed) return;
      closed = true;
      // Stops accepting, lets in-flight requests finish, then releases the database.
      await app.close();
      await database.close();
    },
  };
}
