import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { createAuditService } from '../services/audit/audit-service.js';
import { createAuthService } from '../services/auth/auth-service.js';
import { createKeyConfigDal } from '../services/keyconfig/keyconfig-dal.js';
import { createKeyConfigService } from '../services/keyconfig/keyconfig-service.js';
import { createRateLimiter } from '../services/rate-limiter.js';
import { createTokenDal } from '../services/auth/token-dal.js';
import { bootstrapIfEmpty, type BootstrapResult } from '../services/orgs/bootstrap.js';
import { createOrgDal } from '../services/orgs/org-dal.js';
import { createOrgService } from '../services/orgs/org-service.js';
import { openDatabase, type DatabaseHandle } from '../store/database.js';
import { runMigrations } from '../store/migrate.js';
import { convaultMigrations } from '../store/migrations/index.js';
import type { Database } from '../store/schema.js';
import { VERSION } from '../version.js';
import { buildApp, type AppServices } from './app.js';
import { setupKms, type KmsSetup } from './kms-setup.js';

/** The composition root: opens the store, wires every service once, and serves HTTP. */
export interface Runtime {
  app: FastifyInstance;
  url: string;
  database: DatabaseHandle<Database>;
  bootstrap: BootstrapResult;
  kms: KmsSetup;
  services: AppServices;
  /** Alias ARN of the demo customer key (embedded local KMS only). */
  demoKeyAliasArn?: string;
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
  const audit = createAuditService({ db });
  const bootstrap = await bootstrapIfEmpty({ db, dataDir: config.dataDir, token: config.bootstrapToken });
  const kms = await setupKms(config, database);
  const demoKeyAliasArn = bootstrap.orgId ? await kms.ensureDemoKey(bootstrap.orgId) : undefined;
  const keyConfigs = createKeyConfigService({
    dal: createKeyConfigDal(db),
    gateway: kms.gateway,
    audit,
    testLimiter: createRateLimiter({ limit: config.testRateLimitPerMinute, windowMs: 60_000 }),
    platformKeyArn: kms.platformKeyArn,
    settings: {
      platformAccountId: config.kms.platformAccountId,
      encryptionContextKey: config.kms.encryptionContextKey,
      allowedRegions: config.kms.allowedRegions,
      defaultRegion: config.kms.region,
      refreshMs: config.configRefreshMs,
    },
  });

  const services: AppServices = { auth, orgs, audit, keyConfigs, pingDatabase: async () => void (await sql`select 1`.execute(db)) };
  const app = await buildApp({
    services,
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
    kms,
    services,
    demoKeyAliasArn,
    async close() {
      if (closed) return;
      closed = true;
      // Stops accepting, lets in-flight requests finish, then releases the database.
      await app.close();
      await kms.close();
      await database.close();
    },
  };
}
