import { randomUUID } from 'node:crypto';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import type { KmsGateway } from '../kms/kms-gateway.js';
import type { KmsMetrics } from '../kms/kms-metrics.js';
import { createConvaultMetrics, type ConvaultMetrics } from '../metrics/registry.js';
import { createScrapeDal } from '../metrics/scrape-dal.js';
import { esdkClientProvider } from '../providers/aws-kms/esdk/esdk-kms-client.js';
import { createEsdkMessageCodec } from '../providers/aws-kms/esdk/esdk-message-codec.js';
import { createAuditSealer } from '../services/audit/audit-sealer.js';
import { createAuditService, type AuditService } from '../services/audit/audit-service.js';
import { createAuthService, platformOrgIdFrom } from '../services/auth/auth-service.js';
import { createTokenDal } from '../services/auth/token-dal.js';
import { createTokenService, type TokenService } from '../services/auth/token-service.js';
import { createEncryptionService, MAX_ENCRYPTED_DATA_CHARACTERS } from '../services/encryption/encryption-service.js';
import { createKeyHealthDal } from '../services/key-health/key-health-dal.js';
import { createKeyHealthService } from '../services/key-health/key-health-service.js';
import { createKeyHealthWebhooks } from '../services/key-health/key-health-webhooks.js';
import type { webhookSettings } from '../services/key-health/webhook-config.js';
import { createWebhookDeliveryService } from '../services/key-health/webhook-deliveries.js';
import { createWebhookOutboxDal } from '../services/key-health/webhook-outbox-dal.js';
import { createKeyConfigDal } from '../services/keyconfig/keyconfig-dal.js';
import { createKeyConfigService } from '../services/keyconfig/keyconfig-service.js';
import { createLifecycleDal } from '../services/lifecycle/lifecycle-dal.js';
import { createLifecycleService } from '../services/lifecycle/lifecycle-service.js';
import { createRewrapService } from '../services/lifecycle/rewrap-service.js';
import { createOrgDal } from '../services/orgs/org-dal.js';
import { createOrgService } from '../services/orgs/org-service.js';
import { createKeyErrorRecorder } from '../services/secured-data/key-errors.js';
import { createSecuredDataDal } from '../services/secured-data/secured-data-dal.js';
import { createSecuredDataService } from '../services/secured-data/secured-data-service.js';
import { createStoreRateLimiter } from '../services/store-rate-limiter.js';
import type { DatabaseHandle } from '../store/database.js';
import { createGroupCommitter } from '../store/group-commit.js';
import { pingStore } from '../store/ping.js';
import type { Database } from '../store/schema.js';
import type { AppServices } from './app.js';
import { createKeyLayer, keyLayerSettings } from './key-layer.js';
import { rewrapSettings } from './service-settings.js';
import { keyConfigSettings } from './service-settings.js';

/**
 * The one composition root: every service wired once from the configuration, the database and the
 * platform's KMS — by `serve` (src/server/runtime.ts) and by the CLI commands that run services
 * (`convault rewrap`). Building has no side effects: nothing listens, no timer runs; the background
 * loops are returned as one list for the caller to start and stop.
 */

export interface ServiceLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** The platform's KMS as the services need it (src/server/kms-setup.ts makes it). */
export interface PlatformKms {
  gateway: KmsGateway;
  platformKeyArn: string;
  clientForRegion(region: string): KMSClient;
  metrics: KmsMetrics;
}

/** Work that runs on its own while the process serves: started and stopped together. */
export interface BackgroundLoop {
  name: string;
  start(): void;
  /** Resolves when its work in flight has stopped. */
  stop(): Promise<void>;
  /** Stopped only once the HTTP server finished its requests (their work still needs it). */
  afterRequests?: boolean;
}

export type WiredServices = ReturnType<typeof createServices>;

/**
 * The token service on a transaction, as the bootstrap of an empty database needs it (the first
 * organization, its admin token and the audit event, all in one transaction).
 */
export function tokensInTransaction(trx: Kysely<Database>, platformOrgId: () => Promise<string>): TokenService {
  return createTokenService({ db: trx, audit: createAuditService({ db: trx }), platformOrgId });
}

/**
 * The services that need no key provider — audit trail, authentication, tokens, organizations —
 * as every process wires them: `createServices` below, and the CLI commands that only manage
 * organizations, tokens or the audit trail.
 */
export function createCoreServices(config: Config, deps: { database: DatabaseHandle<Database>; metrics?: ConvaultMetrics }) {
  const { db } = deps.database;
  const orgDal = createOrgDal(db);
  // SQLite: concurrent writes share one transaction and one commit (src/store/group-commit.ts).
  const groupCommit = deps.database.dialect === 'sqlite' ? createGroupCommitter(db, deps.metrics ? { onBatch: deps.metrics.observeGroupCommit } : {}) : undefined;
  const created = createAuditService({ db, groupCommit });
  const audit = deps.metrics ? countAppends(created, deps.metrics.auditAppended) : created;
  const platformOrgId = platformOrgIdFrom(orgDal);
  return {
    orgDal,
    groupCommit,
    audit,
    auth: createAuthService({ tokenDal: createTokenDal(db), platformOrgId, tokenCacheMaxAgeMs: config.tokenCacheMaxAgeMs }),
    tokens: createTokenService({ db, audit, platformOrgId }),
    orgs: createOrgService({ orgDal }),
  };
}

export function createServices(
  config: Config,
  deps: {
    database: DatabaseHandle<Database>;
    kms: PlatformKms;
    logger: ServiceLog;
    /** Key health webhooks, when configured (webhookSettings(config.webhook)). */
    webhook?: ReturnType<typeof webhookSettings>;
    metrics?: ConvaultMetrics;
  },
) {
  const { database, kms, logger } = deps;
  const { db } = database;
  const metrics = deps.metrics ?? createConvaultMetrics({ orgLabel: config.metrics.orgLabel });
  const { orgDal, groupCommit, audit, auth, tokens, orgs } = createCoreServices(config, { database, metrics });

  // Every service reaches the organization's key through the provider port (src/providers).
  const keyLayer = createKeyLayer({ db, gateway: kms.gateway, platformKeyArn: kms.platformKeyArn, settings: keyLayerSettings(config) });
  const keyConfigDal = createKeyConfigDal(db);
  const keyConfigs = createKeyConfigService({
    dal: keyConfigDal,
    keys: keyLayer.keys,
    secrets: keyLayer.secrets,
    keyPolicyStatements: keyLayer.keyPolicyStatements,
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
  const webhook = deps.webhook;
  const webhooks = webhook
    ? createKeyHealthWebhooks(db, { url: webhook.url, secret: webhook.secret, retry: { attempts: webhook.maxAttempts }, nodeId, audit, log: logger, onAttempt: metrics.webhookDelivery })
    : undefined;
  const outboxDal = createWebhookOutboxDal(db);
  const webhookDeliveries = createWebhookDeliveryService({ dal: outboxDal, keyConfigDal, outbox: webhooks, audit });
  const keyHealth = createKeyHealthService({
    dal: createKeyHealthDal(db),
    keyConfigDal,
    keyConfigs,
    keys: keyLayer.keys,
    audit,
    probeLimiter: createStoreRateLimiter({ ...database, name: 'probe', limit: config.testRateLimitPerMinute, windowMs: 60_000 }),
    ...(webhooks ? { webhooks } : {}),
    settings: {
      nodeId,
      intervalMs: config.keyProbeIntervalSeconds * 1000,
      platformKeyArn: kms.platformKeyArn,
    },
    log: logger,
  });

  // Customer secured data and Encrypt/Decrypt Data (src/services/secured-data, src/services/encryption).
  const keyErrorSettings = { platformAccountId: config.kms.platformAccountId, encryptionContextKey: config.kms.encryptionContextKey, defaultRegion: config.kms.region };
  // Real traffic moves key health at once (a failure, or the recovery after one), not only probes.
  const keyErrors = createKeyErrorRecorder({ keyConfigs, health: keyHealth });
  const cacheMaxAgeMs = config.dataKeys.cacheMaxAgeSeconds * 1000;
  const securedData = createSecuredDataService({
    dal: createSecuredDataDal(db, database.dialect, groupCommit),
    keys: keyLayer.keys,
    keyConfigs,
    audit,
    keyErrors,
    settings: { ...keyErrorSettings, rotateMs: config.dataKeys.rotateSeconds * 1000, maxConversations: config.dataKeys.maxConversations, cacheMaxAgeMs },
    cacheObservers: { dataKeys: metrics.cacheObserver('data_keys'), conversationKeys: metrics.cacheObserver('conversation_keys') },
  });
  const encryption = createEncryptionService({
    keyConfigs,
    keys: keyLayer.keys,
    // AWS Encryption SDK messages; Decrypt Data's input limit bounds the body the codec opens.
    codec: createEsdkMessageCodec(esdkClientProvider(kms.clientForRegion, kms.metrics), {
      encryptionContextKey: config.kms.encryptionContextKey,
      cacheMaxAgeMs,
      maxBodySize: MAX_ENCRYPTED_DATA_CHARACTERS,
    }),
    audit,
    keyErrors,
    settings: keyErrorSettings,
  });

  // Key lifecycle: usage inventory, rewrap jobs (resumed by a sweep after a crash), time-window shred.
  const lifecycleDal = createLifecycleDal(db);
  const forgetDataKeys = (ids: Iterable<string>) => securedData.forgetDataKeys(ids);
  const rewrap = createRewrapService({ dal: lifecycleDal, keys: keyLayer.keys, keyConfigs, audit, forgetDataKeys, settings: rewrapSettings(config), logger });
  const lifecycle = createLifecycleService({ dal: lifecycleDal, keyConfigDal, keyConfigs, orgDal, keys: keyLayer.keys, audit, forgetDataKeys });

  // The audit sealer chains appended events in batches, one node at a time (docs/AUDIT.md).
  const auditSealer = createAuditSealer({ db, dialect: database.dialect, settings: { intervalMs: config.auditSealIntervalMs }, log: logger });

  const services: AppServices = { auth, tokens, orgs, audit, keyConfigs, keyHealth, webhookDeliveries, securedData, encryption, lifecycle, rewrap, pingDatabase: () => pingStore(db, 2000) };
  const scrape = createScrapeDal(db);
  metrics.setScrapeSources({ rewrapJobs: scrape.rewrapJobs, keyHealth: scrape.keyHealth, webhookOutbox: () => outboxDal.stats(Date.now()), pool: database.poolStats, auditSealLag: auditSealer.lagSeconds, checkpoints: database.checkpoints });

  const background: BackgroundLoop[] = [
    // Picks up queued jobs and those of a node that died; a stop lets a running job give its lease back.
    { name: 'rewrap sweeper', start: () => rewrap.startSweeper(2000), stop: () => rewrap.stop() },
    { name: 'key health probes', start: () => keyHealth.start(), stop: () => keyHealth.stop() },
    {
      name: 'audit sealer',
      afterRequests: true,
      start: () => auditSealer.start(),
      // A last pass, so a clean shutdown leaves nothing for another node to seal.
      stop: async () => {
        await auditSealer.sealPending().catch(() => undefined);
        await auditSealer.stop();
      },
    },
  ];

  return {
    services,
    metrics,
    keyLayer,
    auditSealer,
    background,
    /** Drops every plaintext key and provider client this process holds. */
    clearCaches(): void {
      securedData.clearCaches();
      keyLayer.keys.close();
    },
  };
}

/** Starts every background loop of the list. */
export function startBackground(loops: readonly BackgroundLoop[]): void {
  for (const loop of loops) loop.start();
}

/** Stops them all together, waiting for each one's work in flight. */
export async function stopBackground(loops: readonly BackgroundLoop[]): Promise<void> {
  await Promise.all(loops.map((loop) => loop.stop()));
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
