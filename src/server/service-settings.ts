import type { Config } from '../config.js';
import type { KeyConfigSettings } from '../services/keyconfig/keyconfig-service.js';
import type { RewrapSettings } from '../services/lifecycle/rewrap-job.js';

/** The configuration each service needs, derived once here so `serve` and the CLI agree. */
export function keyConfigSettings(config: Config): KeyConfigSettings {
  return {
    platformAccountId: config.kms.platformAccountId,
    encryptionContextKey: config.kms.encryptionContextKey,
    allowedRegions: config.kms.allowedRegions,
    defaultRegion: config.kms.region,
    refreshMs: config.configRefreshMs,
    xksUrlPolicy: config.xks,
  };
}

export function rewrapSettings(config: Config): RewrapSettings {
  return {
    // At most this many KMS calls in flight per job (issue: 8 per organization).
    concurrency: 8,
    leaseMs: 10_000,
    batchSize: 200,
    platformAccountId: config.kms.platformAccountId,
    defaultRegion: config.kms.region,
    encryptionContextKey: config.kms.encryptionContextKey,
  };
}
