import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { CreateAliasCommand, CreateKeyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { createKmsClient } from '../src/kms/client-factory.js';
import { createKmsGateway } from '../src/kms/kms-gateway.js';
import { customerKeyPolicy } from '../src/kms/key-policy.js';
import { createKmsMetrics, type KmsMetrics } from '../src/kms/kms-metrics.js';
import { startLocalKms, type LocalKms } from '../src/localkms/index.js';
import { createKeyLayer, type KeyLayerSettings } from '../src/server/key-layer.js';
import { createAuditService } from '../src/services/audit/audit-service.js';
import type { Caller } from '../src/services/auth/auth-service.js';
import type { ActiveKey } from '../src/services/keyconfig/keyconfig-service.js';
import { createSecuredDataDal, type SecuredDataDal } from '../src/services/secured-data/secured-data-dal.js';
import { createSecuredDataService, type SecuredDataService } from '../src/services/secured-data/secured-data-service.js';
import { openDatabase, type DatabaseHandle } from '../src/store/database.js';
import { runMigrations } from '../src/store/migrate.js';
import { convaultMigrations } from '../src/store/migrations/index.js';
import type { Database } from '../src/store/schema.js';

/**
 * The secured-data service wired in-process exactly as the runtime wires it — SQLite in a temp
 * directory, the local KMS on loopback reached through @aws-sdk/client-kms, the real audit trail —
 * minus HTTP. Organizations are added with their own customer key (alias ARN, key policy for the platform).
 */

export const CUSTOMER_ACCOUNT = '111122223333';
export const PLATFORM_ACCOUNT = '444455556666';
export const CONTEXT_KEY = 'convault-organization-id';
const REGION = 'us-east-1';

export const benchKeyLayerSettings: KeyLayerSettings = {
  platformAccountId: PLATFORM_ACCOUNT,
  encryptionContextKey: CONTEXT_KEY,
  allowedRegions: [REGION],
  defaultRegion: REGION,
  refreshMs: 2000,
  xksUrlPolicy: { allowHttpLoopback: false, allowPrivateNetworks: false },
};

export interface BenchOrg {
  orgId: string;
  caller: Caller;
  aliasArn: string;
  /** A service for this organization with these data-key settings (each call: a fresh service, empty caches). */
  service(opts?: { maxConversations?: number; rotateSeconds?: number; cacheMaxAgeSeconds?: number }): { securedData: SecuredDataService; dal: SecuredDataDal };
}

export interface BenchStack {
  database: DatabaseHandle<Database>;
  localKms: LocalKms;
  metrics: KmsMetrics;
  clientForRegion(region: string): KMSClient;
  /** A new organization with its own customer key (alias ARN, key policy granting the platform for it). */
  newOrg(name: string): Promise<BenchOrg>;
  close(): Promise<void>;
}

export async function startBenchStack(): Promise<BenchStack> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'convault-bench-'));
  const database = await openDatabase<Database>({ dataDir });
  await runMigrations(database.db, database.dialect, convaultMigrations);
  const localKms = await startLocalKms({ db: database.db, dialect: database.dialect, rootKey: randomBytes(32), port: 0 });
  const metrics = createKmsMetrics();
  const clients = new Map<string, KMSClient>();
  const clientForRegion = (region: string) => {
    let client = clients.get(region);
    if (!client) clients.set(region, (client = createKmsClient({ endpoint: localKms.url, region, credentials: () => localKms.credentialsFor(PLATFORM_ACCOUNT) })));
    return client;
  };
  const gateway = createKmsGateway({ clientForRegion, defaultRegion: REGION, metrics });
  // The key layer as `serve` wires it; the benchmark orgs use customer keys only, so no platform key is made.
  const keyLayer = createKeyLayer({ db: database.db, gateway, platformKeyArn: `arn:aws:kms:${REGION}:${PLATFORM_ACCOUNT}:key/unused-by-the-benchmark`, settings: benchKeyLayerSettings });

  const audit = createAuditService({ db: database.db });
  const customer = createKmsClient({ endpoint: localKms.url, region: REGION, credentials: () => localKms.credentialsFor(CUSTOMER_ACCOUNT) });

  async function newOrg(name: string): Promise<BenchOrg> {
    const orgId = randomUUID();
    await database.db.insertInto('organizations').values({ id: orgId, name, created_at: Date.now() }).execute();
    const policy = customerKeyPolicy({ customerAccountId: CUSTOMER_ACCOUNT, platformAccountId: PLATFORM_ACCOUNT, encryptionContextKey: CONTEXT_KEY, orgIds: [orgId] });
    const key = await customer.send(new CreateKeyCommand({ Policy: JSON.stringify(policy), Description: `benchmark key of ${name}` }));
    const aliasName = `alias/convault-bench-${orgId.slice(0, 8)}`;
    await customer.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyMetadata!.KeyId! }));
    const aliasArn = `arn:aws:kms:${REGION}:${CUSTOMER_ACCOUNT}:${aliasName}`;
    const active: ActiveKey = { type: 'KmsSymmetric', keyId: aliasArn, version: 1 };
    return {
      orgId,
      aliasArn,
      caller: { orgId, principalId: 'bench', principalName: 'benchmark', permissions: new Set() },
      service(opts = {}) {
        const dal = createSecuredDataDal(database.db, database.dialect);
        const securedData = createSecuredDataService({
          dal,
          keys: keyLayer.keys,
          keyConfigs: { resolveActiveKey: async () => active },
          audit,
          settings: {
            platformAccountId: PLATFORM_ACCOUNT,
            encryptionContextKey: CONTEXT_KEY,
            defaultRegion: REGION,
            rotateMs: (opts.rotateSeconds ?? 3600) * 1000,
            maxConversations: opts.maxConversations ?? 10_000,
            cacheMaxAgeMs: (opts.cacheMaxAgeSeconds ?? 60) * 1000,
          },
        });
        return { securedData, dal };
      },
    };
  }

  return {
    database,
    localKms,
    metrics,
    clientForRegion,
    newOrg,
    async close() {
      customer.destroy();
      for (const client of clients.values()) client.destroy();
      await localKms.close();
      await database.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
