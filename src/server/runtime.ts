import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import type { AuditSealer } from '../services/audit/audit-sealer.js';
import { createConvaultMetrics, type ConvaultMetrics } from '../metrics/registry.js';
import { webhookSettings } from '../services/key-health/webhook-config.js';
import { forgetLocalKmsUrl, recordLocalKmsUrl } from '../kms/local-kms-address.js';
import { bootstrapIfEmpty, type BootstrapResult } from '../services/orgs/bootstrap.js';
import { createFailureLimiter } from '../services/store-rate-limiter.js';
import { openDatabase, type DatabaseHandle } from '../store/database.js';
import { runMigrations } from '../store/migrate.js';
import { convaultMigrations } from '../store/migrations/index.js';
import type { Database } from '../store/schema.js';
import { VERSION } from '../version.js';
import { buildApp, type AppServices } from './app.js';
import type { KeyLayer } from './key-layer.js';
import { createServices, startBackground, stopBackground, tokensInTransaction } from './services.js';
import { setupKms, type KmsSetup } from './kms-setup.js';
import { startMetricsListener } from './routes/metrics.js';
import { databaseFailure, ensureWritableDataDir, listenFailure, localKmsListenFailure, startupStep } from './startup-failures.js';

/** The server's runtime: opens the store, starts the KMS, wires the services (./services.ts, the composition root), and serves HTTP. */
export interface Runtime {
  app: FastifyInstance;
  url: string;
  database: DatabaseHandle<Database>;
  bootstrap: BootstrapResult;
  kms: KmsSetup;
  /** The provider port as wired here (src/server/key-layer.ts): for a second service on the same keys. */
  keyLayer: KeyLayer;
  services: AppServices;
  auditSealer: AuditSealer;
  metrics: ConvaultMetrics;
  /** Port of the loopback metrics listener (CONVAULT_METRICS_PORT), when configured. */
  metricsPort?: number;
  /** Alias ARN of the demo customer key (embedded local KMS only). */
  demoKeyAliasArn?: string;
  close(): Promise<void>;
}

/** Opens and migrates the database; failing to reach or write it is one line naming DATABASE_URL or CONVAULT_DATA_DIR. */
export async function openConvaultDatabase(config: Config): Promise<DatabaseHandle<Database>> {
  const explain = (err: unknown) => databaseFailure(err, config);
  const database = await startupStep(
    () =>
      openDatabase<Database>({
        url: config.databaseUrl,
        dataDir: config.dataDir,
        busyTimeoutMs: config.sqliteBusyTimeoutMs,
        sqliteSynchronous: config.sqliteSynchronous,
        sqliteCheckpoint: config.sqliteCheckpoint,
      }),
    explain,
  );
  try {
    await startupStep(() => runMigrations(database.db, database.dialect, convaultMigrations), explain);
  } catch (err) {
    await database.close().catch(() => undefined);
    throw err;
  }
  return database;
}

export async function startRuntime(config: Config): Promise<Runtime> {
  // A key health webhook URL without a secret is refused before anything starts.
  const webhook = webhookSettings(config.webhook);
  // The admin token and the local KMS root key are written to the data dir even with PostgreSQL.
  ensureWritableDataDir(config.dataDir);
  const database = await openConvaultDatabase(config);
  try {
    return await startServices(config, database, webhook);
  } catch (err) {
    await database.close().catch(() => undefined);
    throw err;
  }
}

async function startServices(config: Config, database: DatabaseHandle<Database>, webhook: ReturnType<typeof webhookSettings>): Promise<Runtime> {
  const { db } = database;
  const metrics = createConvaultMetrics({ orgLabel: config.metrics.orgLabel });
  const bootstrap = await bootstrapIfEmpty({ db, dataDir: config.dataDir, token: config.bootstrapToken, tokensIn: tokensInTransaction });
  // The embedded local KMS starts before the app whose logger it shares; until then it writes to stderr.
  let appLog: FastifyBaseLogger | undefined;
  const localKmsLog = { info: () => undefined, warn: (line: string) => (appLog ? appLog.warn(line) : void process.stderr.write(`${line}\n`)) };
  const kms = await startupStep(() => setupKms(config, database, localKmsLog), (err) => localKmsListenFailure(err, config));
  const kmsProvider = kmsProviderLabel(config.kms.endpoint);
  kms.metrics.subscribe((operation, outcome, ms) => metrics.observeKmsCall(kmsProvider, operation, outcome, ms));
  const demoKeyAliasArn = bootstrap.orgId ? await kms.ensureDemoKey(bootstrap.orgId) : undefined;
  // The services log through the HTTP server's logger, made below.
  const logger = {
    info: (obj: object, msg: string) => app.log.info(obj, msg),
    warn: (obj: object, msg: string) => app.log.warn(obj, msg),
    error: (obj: object, msg: string) => app.log.error(obj, msg),
  };
  const wired = createServices(config, { database, kms, logger, metrics, ...(webhook ? { webhook } : {}) });
  const { services, keyLayer, auditSealer, background } = wired;
  const draining = { active: false };
  const app = await buildApp({
    draining,
    services,
    bodyLimitBytes: config.bodyLimitBytes,
    authFailuresPerMinute: config.authFailuresPerMinute,
    authFailures: createFailureLimiter({ ...database, name: 'auth-failures', limit: config.authFailuresPerMinute, windowMs: 60_000 }),
    metrics: { registry: metrics, token: config.metrics.token },
    version: VERSION,
    logger: {
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
    },
  });
  appLog = app.log;
  database.setLogger({ warn: (obj, msg) => app.log.warn(obj, msg) });
  let address: string;
  try {
    address = await startupStep(() => app.listen({ port: config.port, host: config.host }), (err) => listenFailure(err, config));
  } catch (err) {
    await app.close().catch(() => undefined);
    await kms.close().catch(() => undefined);
    throw err;
  }
  // Only a server that is up tells the CLI where its local KMS is (a failed second start must not
  // overwrite the record of the one that runs).
  if (kms.localKms) recordLocalKmsUrl(config.dataDir, kms.localKms.url);
  const port = (app.server.address() as { port: number }).port;
  const url = `http://${config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host}:${port}`;
  app.log.debug({ address }, 'listening');
  startBackground(background);
  const metricsListener = config.metrics.port !== undefined ? await startMetricsListener(metrics, config.metrics.port) : undefined;

  let closed = false;
  return {
    app,
    url,
    database,
    bootstrap,
    kms,
    keyLayer,
    services,
    auditSealer,
    metrics,
    metricsPort: metricsListener?.port,
    demoKeyAliasArn,
    async close() {
      if (closed) return;
      closed = true;
      // Background work stops taking new rows at once (a running rewrap gives its lease back after the
      // rows in flight, for another node or the next start), while the server stops accepting — new
      // requests get 503 — and lets in-flight requests finish; then the database is released.
      draining.active = true;
      const workStopped = stopBackground(background.filter((loop) => !loop.afterRequests));
      await app.close();
      await metricsListener?.close();
      await workStopped;
      await stopBackground(background.filter((loop) => loop.afterRequests));
      wired.clearCaches();
      if (kms.localKms) forgetLocalKmsUrl(config.dataDir, kms.localKms.url);
      await kms.close();
      await database.close();
    },
  };
}

/** The `provider` label of KMS call metrics: where the platform's KMS calls go. */
function kmsProviderLabel(endpoint: string | undefined): string {
  if (endpoint === undefined) return 'local';
  if (endpoint === 'aws') return 'aws';
  return 'endpoint';
}
