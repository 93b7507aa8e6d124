import type { Kysely } from 'kysely';
import type { KMSClient } from '@aws-sdk/client-kms';
import type { Config } from '../config.js';
import { createAwsKmsClient, createKmsClient, isLoopbackEndpoint } from '../kms/client-factory.js';
import { createKmsGateway, type KmsGateway } from '../kms/kms-gateway.js';
import { createKmsMetrics, type KmsMetrics } from '../kms/kms-metrics.js';
import { DEMO_ACCOUNT_ID, ensureDemoCustomerKey } from '../kms/demo-key.js';
import { ensurePlatformKey } from '../kms/platform-key.js';
import { resolveLocalKmsRootKey, startLocalKms, type LocalKms } from '../localkms/index.js';
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

/** The platform's SDK clients (one per region) and the gateway over them, for a KMS at `endpoint`. */
export function platformKmsClients(config: Config, endpoint: string) {
  const clients = new Map<string, KMSClient>();
  const clientForRegion = (region: string): KMSClient => {
    let client = clients.get(region);
    if (!client) {
      // The local KMS takes the platform account id as its access key id; AWS takes real credentials.
      if (endpoint === 'aws') client = createAwsKmsClient({ region });
      else if (isLoopbackEndpoint(endpoint)) client = createKmsClient({ endpoint, region, accessKeyId: config.kms.platformAccountId });
      else client = createAwsKmsClient({ endpoint, region });
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
export async function setupKms(config: Config, database: { db: Kysely<any>; dialect: DialectName }): Promise<KmsSetup> {
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
    });
    endpoint = localKms.url;
  }
  const { clients, clientForRegion, metrics, gateway } = platformKmsClients(config, endpoint);
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
        const customer = createKmsClient({ endpoint: endpoint!, region: config.kms.region, accessKeyId: DEMO_ACCOUNT_ID });
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
