import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.js';
import { createAuditSealer, type AuditSealer } from '../services/audit/audit-sealer.js';
import { createConvaultMetrics, type ConvaultMetrics } from '../metrics/registry.js';
import { createScrapeDal } from '../metrics/scrape-dal.js';
import { createAuditService, type AuditService } from '../services/audit/audit-service.js';
import { createAuthService, platformOrgIdFrom } from '../services/auth/auth-service.js';
import { createTokenService } from '../services/auth/token-service.js';
import { createKeyConfigDal } from '../services/keyconfig/keyconfig-dal.js';
import { createKeyConfigService } from '../services/keyconfig/keyconfig-service.js';
import { createKeyHealthDal } from '../services/key-health/key-health-dal.js';
import { createKeyHealthService } from '../services/key-health/key-health-service.js';
import { webhookSettings } from '../services/key-health/webhook-config.js';
import { createKeyHealthWebhooks } from '../services/key-health/key-health-webhooks.js';
import { createWebhookDeliveryService } from '../services/key-health/webhook-deliveries.js';
import { createWebhookOutboxDal } from '../services/key-health/webhook-outbox-dal.js';
import { forgetLocalKmsUrl, recordLocalKmsUrl } from '../kms/local-kms-address.js';
import { createLifecycleDal } from '../services/lifecycle/lifecycle-dal.js';
import { createLifecycleService } from '../services/lifecycle/lifecycle-service.js';
import { createRewrapService } from '../services/lifecycle/rewrap-service.js';
import { createStoreRateLimiter } from '../services/store-rate-limiter.js';
import { esdkClientProvider } from '../services/encryption/esdk-kms-client.js';
import { createEncryptionService } from '../services/encryption/encryption-service.js';
import { createKeyErrorRecorder } from '../services/secured-data/key-errors.js';
import { createSecuredDataDal } from '../services/secured-data/secured-data-dal.js';
import { createSecuredDataService } from '../services/secured-data/secured-data-service.js';
import { createTokenDal } from '../services/auth/token-dal.js';
import { bootstrapIfEmpty, type BootstrapResult } from '../services/orgs/bootstrap.js';
import { createOrgDal } from '../services/orgs/org-dal.js';
import { createOrgService } from '../services/orgs/org-service.js';
import { openDatabase, type DatabaseHandle } from '../store/database.js';
import { createGroupCommitter } from '../store/group-commit.js';
import { runMigrations } from '../store/migrate.js';
import { pingStore } from '../store/ping.js';
import { convaultMigrations } from '../store/migrations/index.js';
import type { Database } from '../store/schema.js';
import { VERSION } from '../version.js';
import { buildApp, type AppServices } from './app.js';
import { setupKms, type KmsSetup } from './kms-setup.js';
import { startMetricsListener } from './routes/metrics.js';
import { databaseFailure, ensureWritableDataDir, listenFailure, localKmsListenFailure, startupStep } from './startup-failures.js';
import { keyConfigSettings, rewrapSettings } from './service-settings.js';

/** The composition root: opens the store, wires every service once, and serves HTTP. */
export interface Runtime {
  app: FastifyInstance;
  url: string;
  database: DatabaseHandle<Database>;
  bootstrap: BootstrapResult;
  kms: KmsSetup;
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
  const orgDal = createOrgDal(db);
  // SQLite: concurrent writes share one transaction and one commit (src/store/group-commit.ts).
  const groupCommit = database.dialect === 'sqlite' ? createGroupCommitter(db) : undefined;
  const audit = countAppends(createAuditService({ db, groupCommit }), metrics.auditAppended);
  const platformOrgId = platformOrgIdFrom(orgDal);
  const auth = createAuthService({ tokenDal: createTokenDal(db), platformOrgId, tokenCacheMaxAgeMs: config.tokenCacheMaxAgeMs });
  const tokens = createTokenService({ db, audit, platformOrgId });
  const orgs = createOrgService({ orgDal });
  const bootstrap = await bootstrapIfEmpty({ db, dataDir: config.dataDir, token: config.bootstrapToken });
  const kms = await startupStep(() => setupKms(config, database), (err) => localKmsListenFailure(err, config));
  const kmsProvider = kmsProviderLabel(config.kms.endpoint);
  kms.metrics.subscribe((operation, outcome, ms) => metrics.observeKmsCall(kmsProvider, operation, outcome, ms));
  const demoKeyAliasArn = bootstrap.orgId ? await kms.ensureDemoKey(bootstrap.orgId) : undefined;
  const keyConfigDal = createKeyConfigDal(db);
  const keyConfigs = createKeyConfigService({
    dal: keyConfigDal,
    gateway: kms.gateway,
    audit,
    testLimiter: createStoreRateLimiter({ ...database, name: 'keytest', limit: config.testRateLimitPerMinute, windowMs: 60_000 }),
    cacheObserver: metrics.cacheObserver('configurations'),
    platformKeyArn: kms.platformKeyArn,
    settings: keyConfigSettings(config),
    // A passing Save ran the Test on the key: health is ok from there (keyHealth is wired below).
    onSaved: (row) => keyHealth.afterSave(row),
  });

  // Key health: background probes of every customer key, one node at a time (docs/KEY_HEALTH.md);
  // transitions go to the durable webhook outbox, sent by one node at a time.
  const nodeId = `node-${randomUUID()}`;
  const healthLog = {
    info: (obj: object, msg: string) => app.log.info(obj, msg),
    warn: (obj: object, msg: string) => app.log.warn(obj, msg),
    error: (obj: object, msg: string) => app.log.error(obj, msg),
  };
  const webhooks = webhook
    ? createKeyHealthWebhooks(db, { url: webhook.url, secret: webhook.secret, retry: { attempts: webhook.maxAttempts }, nodeId, audit, log: healthLog, onAttempt: metrics.webhookDelivery })
    : undefined;
  const outboxDal = createWebhookOutboxDal(db);
  const webhookDeliveries = createWebhookDeliveryService({ dal: outboxDal, keyConfigDal, outbox: webhooks, audit });
  const keyHealth = createKeyHealthService({
    dal: createKeyHealthDal(db),
    keyConfigDal,
    keyConfigs,
    gateway: kms.gateway,
    audit,
    probeLimiter: createStoreRateLimiter({ ...database, name: 'probe', limit: config.testRateLimitPerMinute, windowMs: 60_000 }),
    ...(webhooks ? { webhooks } : {}),
    settings: {
      nodeId,
      intervalMs: config.keyProbeIntervalSeconds * 1000,
      platformKeyArn: kms.platformKeyArn,
      platformAccountId: config.kms.platformAccountId,
      encryptionContextKey: config.kms.encryptionContextKey,
      allowedRegions: config.kms.allowedRegions,
      defaultRegion: config.kms.region,
    },
    log: healthLog,
  });

  // Customer secured data and Encrypt/Decrypt Data (src/services/secured-data, src/services/encryption).
  const keyErrorSettings = { platformAccountId: config.kms.platformAccountId, encryptionContextKey: config.kms.encryptionContextKey, defaultRegion: config.kms.region };
  // Real traffic moves key health at once (a failure, or the recovery after one), not only probes.
  const keyErrors = createKeyErrorRecorder({ keyConfigs, health: keyHealth });
  const cacheMaxAgeMs = config.dataKeys.cacheMaxAgeSeconds * 1000;
  const securedData = createSecuredDataService({
    dal: createSecuredDataDal(db, database.dialect, groupCommit),
    gateway: kms.gateway,
    keyConfigs,
    audit,
    keyErrors,
    settings: { ...keyErrorSettings, rotateMs: config.dataKeys.rotateSeconds * 1000, maxConversations: config.dataKeys.maxConversations, cacheMaxAgeMs },
    cacheObservers: { dataKeys: metrics.cacheObserver('data_keys'), conversationKeys: metrics.cacheObserver('conversation_keys') },
  });
  const encryption = createEncryptionService({
    keyConfigs,
    clientProvider: esdkClientProvider(kms.clientForRegion, kms.metrics),
    audit,
    keyErrors,
    settings: { ...keyErrorSettings, cacheMaxAgeMs },
  });

  // Key lifecycle: usage inventory, rewrap jobs (resumed by a sweep after a crash), time-window shred.
  const lifecycleDal = createLifecycleDal(db);
  const forgetDataKeys = (ids: Iterable<string>) => securedData.forgetDataKeys(ids);
  const rewrap = createRewrapService({
    dal: lifecycleDal,
    gateway: kms.gateway,
    keyConfigs,
    audit,
    forgetDataKeys,
    settings: rewrapSettings(config),
    logger: { error: (obj, msg) => app.log.error(obj, msg), warn: (obj, msg) => app.log.warn(obj, msg) },
  });
  const lifecycle = createLifecycleService({ dal: lifecycleDal, keyConfigDal, keyConfigs, orgDal, gateway: kms.gateway, audit, forgetDataKeys });

  // The audit sealer chains appended events in batches, one node at a time (docs/AUDIT.md).
  const auditSealer = createAuditSealer({
    db,
    dialect: database.dialect,
    settings: { intervalMs: config.auditSealIntervalMs },
    log: { error: (obj, msg) => app.log.error(obj, msg) },
  });

  const services: AppServices = { auth, tokens, orgs, audit, keyConfigs, keyHealth, webhookDeliveries, securedData, encryption, lifecycle, rewrap, pingDatabase: () => pingStore(db, 2000) };
  const scrape = createScrapeDal(db);
  metrics.setScrapeSources({ rewrapJobs: scrape.rewrapJobs, keyHealth: scrape.keyHealth, webhookOutbox: () => outboxDal.stats(Date.now()), pool: database.poolStats, auditSealLag: auditSealer.lagSeconds });
  const draining = { active: false };
  const app = await buildApp({
    draining,
    services,
    bodyLimitBytes: config.bodyLimitBytes,
    authFailuresPerMinute: config.authFailuresPerMinute,
    metrics: { registry: metrics, token: config.metrics.token },
    version: VERSION,
    logger: {
      level: config.logLevel,
      redact: { paths: ['req.headers.authorization', 'req.headers.cookie'], censor: '[redacted]' },
    },
  });
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
  rewrap.startSweeper(2000);
  keyHealth.start();
  auditSealer.start();
  const metricsListener = config.metrics.port !== undefined ? await startMetricsListener(metrics, config.metrics.port) : undefined;

  let closed = false;
  return {
    app,
    url,
    database,
    bootstrap,
    kms,
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
      const jobsStopped = rewrap.stop();
      const probesStopped = keyHealth.stop();
      await app.close();
      await metricsListener?.close();
      await jobsStopped;
      await probesStopped;
      // A last pass, so a clean shutdown leaves nothing for another node to seal.
      await auditSealer.sealPending().catch(() => undefined);
      await auditSealer.stop();
      securedData.clearCaches();
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

/** The audit service, counting the events it appends (the events-appended metric). */
function countAppends(audit: AuditService, appended: () => void): AuditService {
  return {
    ...audit,
    async record(event, executor) {
      const recorded = await audit.record(event, executor);
      appended();
      return recorded;
    },
  };
}
