import type { Kysely } from 'kysely';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { Config } from '../config.js';
import { createAwsKmsClient, createKmsClient, type KmsCredentials } from '../kms/client-factory.js';
import { createKmsGateway, type KmsGateway } from '../kms/kms-gateway.js';
import { createKmsMetrics, type KmsMetrics } from '../kms/kms-metrics.js';
import { DEMO_ACCOUNT_ID, ensureDemoCustomerKey } from '../kms/demo-key.js';
import { ensurePlatformKey } from '../kms/platform-key.js';
import { resolveLocalKmsAdminSecret, resolveLocalKmsRootKey, startLocalKms, type LocalKms, type LocalKmsLogger } from '../localkms/index.js';
import type { DialectName } from '../store/database.js';

export interface KmsSetup {
  gateway: KmsGateway;
  metrics: KmsMetrics;
  clientForRegion(region: string): KMSClient;
  /** The KMS endpoint the SDK talks to (the embedded local KMS, or the configured one). */
  endpoint?: string;
  localKms?: LocalKms;
  platformKeyArn: string;
  /** Creates (once) the demo customer key of the embedded default and returns its alias ARN. */
  ensureDemoKey(orgId: string): Promise<string | undefined>;
  close(): Promise<void>;
}

/**
 * The platform's SDK clients (one per region) and the gateway over them, for a KMS at `endpoint`.
 * With `credentials` (the embedded local KMS hands over the platform account's key in process) they
 * sign with those; otherwise with the SDK's default chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
 * web identity, instance or task role) — for AWS, and for another node's local KMS alike.
 */
export function platformKmsClients(config: Config, endpoint: string, credentials?: () => Promise<KmsCredentials>) {
  const clients = new Map<string, KMSClient>();
  const clientForRegion = (region: string): KMSClient => {
    let client = clients.get(region);
    if (!client) {
      if (credentials) client = createKmsClient({ endpoint, region, credentials });
      else client = createAwsKmsClient({ region, ...(endpoint === 'aws' ? {} : { endpoint }) });
      clients.set(region, client);
    }
    return client;
  };
  const metrics = createKmsMetrics();
  const gateway = createKmsGateway({ clientForRegion, defaultRegion: config.kms.region, metrics });
  return { clients, clientForRegion, metrics, gateway };
}

/**
 * Every KMS call goes through @aws-sdk/client-kms: to the configured endpoint, or to the local
 * KMS started here on loopback (it shares the convault database, so nodes share its keys).
 */
export async function setupKms(config: Config, database: { db: Kysely<any>; dialect: DialectName }, localKmsLogger?: LocalKmsLogger): Promise<KmsSetup> {
  let localKms: LocalKms | undefined;
  let endpoint = config.kms.endpoint;
  if (!endpoint) {
    localKms = await startLocalKms({
      db: database.db,
      dialect: database.dialect,
      rootKey: resolveLocalKmsRootKey({ rootKeyHex: config.kms.localRootKeyHex, dataDir: config.dataDir }),
      port: config.kms.localPort,
      host: '127.0.0.1',
      principalsFile: config.kms.localPrincipalsFile,
      adminSecret: resolveLocalKmsAdminSecret(config.dataDir),
      faultEndpoint: config.kms.localFaultEndpoint,
      logger: localKmsLogger,
    });
    endpoint = localKms.url;
  }
  const embedded = localKms;
  const platformCredentials = embedded ? onceCredentials(() => embedded.credentialsFor(config.kms.platformAccountId)) : undefined;
  const { clients, clientForRegion, metrics, gateway } = platformKmsClients(config, endpoint, platformCredentials);
  try {
    const platformKeyArn = await ensurePlatformKey(clientForRegion(config.kms.region), { create: localKms !== undefined });
    return {
      gateway,
      metrics,
      clientForRegion,
      endpoint,
      localKms,
      platformKeyArn,
      async ensureDemoKey(orgId) {
        if (!localKms || !config.demoKey) return undefined;
        const customer = createKmsClient({ endpoint: endpoint!, region: config.kms.region, credentials: await localKms.credentialsFor(DEMO_ACCOUNT_ID) });
        try {
          return await ensureDemoCustomerKey(customer, {
            region: config.kms.region,
            platformAccountId: config.kms.platformAccountId,
            encryptionContextKey: config.kms.encryptionContextKey,
            orgId,
          });
        } finally {
          customer.destroy();
        }
      },
      async close() {
        for (const client of clients.values()) client.destroy();
        await localKms?.close();
      },
    };
  } catch (err) {
    await localKms?.close();
    throw err;
  }
}

/** Issued keys never change: fetch once, and again only after a failure. */
function onceCredentials(fetch: () => Promise<KmsCredentials>): () => Promise<KmsCredentials> {
  let pending: Promise<KmsCredentials> | undefined;
  return () => {
    pending ??= fetch().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}
