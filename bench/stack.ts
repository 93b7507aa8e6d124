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
import { loadConfig } from '../src/config.js';
import { createConvaultMetrics } from '../src/metrics/registry.js';
import type { AppServices } from '../src/server/app.js';
import { createServices, type PlatformKms } from '../src/server/services.js';
import type { Caller } from '../src/services/auth/auth-service.js';
import { createSecuredDataDal, type SecuredDataDal } from '../src/services/secured-data/secured-data-dal.js';
import type { SecuredDataService } from '../src/services/secured-data/secured-data-service.js';
import { openDatabase, type DatabaseHandle } from '../src/store/database.js';
import { runMigrations } from '../src/store/migrate.js';
import { convaultMigrations } from '../src/store/migrations/index.js';
import type { Database } from '../src/store/schema.js';

/**
 * The services wired in-process by the composition root `serve` uses (createServices) — SQLite in a
 * temp directory, the local KMS on loopback reached through @aws-sdk/client-kms, the real audit
 * trail — minus HTTP and the background loops. Organizations are added with their own customer key
 * (alias ARN, key policy for the platform), saved as their key configuration through the service.
 */

export const CUSTOMER_ACCOUNT = '111122223333';
export const PLATFORM_ACCOUNT = '444455556666';
export const CONTEXT_KEY = 'convault-organization-id';
const REGION = 'us-east-1';

export interface BenchOrg {
  orgId: string;
  caller: Caller;
  aliasArn: string;
  /** The services with these data-key settings (each call: freshly wired services, empty caches). */
  service(opts?: DataKeyOptions): { securedData: SecuredDataService; dal: SecuredDataDal; services: AppServices };
}

export interface DataKeyOptions {
  maxConversations?: number;
  rotateSeconds?: number;
  cacheMaxAgeSeconds?: number;
}

export interface BenchStack {
  database: DatabaseHandle<Database>;
  localKms: LocalKms;
  /** Services wired as `serve` wires them, with these data-key settings (fresh caches each call). */
  services(opts?: DataKeyOptions): AppServices;
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
  // The benchmark orgs use customer keys only, so no platform key is made.
  const kms: PlatformKms = { gateway, platformKeyArn: `arn:aws:kms:${REGION}:${PLATFORM_ACCOUNT}:key/unused-by-the-benchmark`, clientForRegion, metrics };
  const convaultMetrics = createConvaultMetrics({ orgLabel: false });
  const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const services = (opts: DataKeyOptions = {}): AppServices => {
    const config = loadConfig({
      CONVAULT_DATA_DIR: dataDir,
      AWS_REGION: REGION,
      CONVAULT_PLATFORM_ACCOUNT_ID: PLATFORM_ACCOUNT,
      CONVAULT_ENCRYPTION_CONTEXT_KEY: CONTEXT_KEY,
      CONVAULT_DATA_KEY_ROTATE_S: String(opts.rotateSeconds ?? 3600),
      CONVAULT_DATA_KEY_MAX_CONVERSATIONS: String(opts.maxConversations ?? 10_000),
      CONVAULT_KEY_CACHE_MAX_AGE_S: String(opts.cacheMaxAgeSeconds ?? 60),
    });
    return createServices(config, { database, kms, logger: quiet, metrics: convaultMetrics }).services;
  };
  const setup = services();
  const customer = createKmsClient({ endpoint: localKms.url, region: REGION, credentials: () => localKms.credentialsFor(CUSTOMER_ACCOUNT) });

  async function newOrg(name: string): Promise<BenchOrg> {
    const orgId = randomUUID();
    await database.db.insertInto('organizations').values({ id: orgId, name, created_at: Date.now() }).execute();
    const policy = customerKeyPolicy({ customerAccountId: CUSTOMER_ACCOUNT, platformAccountId: PLATFORM_ACCOUNT, encryptionContextKey: CONTEXT_KEY, orgIds: [orgId] });
    const key = await customer.send(new CreateKeyCommand({ Policy: JSON.stringify(policy), Description: `benchmark key of ${name}` }));
    const aliasName = `alias/convault-bench-${orgId.slice(0, 8)}`;
    await customer.send(new CreateAliasCommand({ AliasName: aliasName, TargetKeyId: key.KeyMetadata!.KeyId! }));
    const aliasArn = `arn:aws:kms:${REGION}:${CUSTOMER_ACCOUNT}:${aliasName}`;
    const caller: Caller = { orgId, principalId: 'bench', principalName: 'benchmark', permissions: new Set() };
    // Saved as an admin saves it: the key Test runs, then the configuration is the org's key.
    await setup.keyConfigs.create(caller, { keyConfigurationType: 'KmsSymmetric', url: aliasArn });
    return {
      orgId,
      aliasArn,
      caller,
      service(opts = {}) {
        const wired = services(opts);
        return { securedData: wired.securedData, dal: createSecuredDataDal(database.db, database.dialect), services: wired };
      },
    };
  }

  return {
    database,
    localKms,
    services,
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
