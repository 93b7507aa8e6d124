import type { Kysely } from 'kysely';
import type { Config } from '../config.js';
import { platformKeyPolicyStatements } from '../kms/key-policy.js';
import type { KmsGateway } from '../kms/kms-gateway.js';
import { createProviderFactory } from '../providers/provider-factory.js';
import { createKeyConfigDal } from '../services/keyconfig/keyconfig-dal.js';
import type { KeyConfigSettings } from '../services/keyconfig/keyconfig-service.js';
import { createOrgKeys } from '../services/keyconfig/org-keys.js';
import { createSecretBox } from '../services/keyconfig/secret-box.js';
import type { Database } from '../store/schema.js';
import { keyConfigSettings } from './service-settings.js';

/**
 * The key layer every service reaches "the organization's key" through: the provider factory (one
 * adapter per key configuration type), the secret box for configuration secrets (under the platform
 * key), and the organization's keys by reference. Wired once per process by `serve`, the CLI and
 * the benchmarks; no side effects.
 */

/** The same settings the key configuration service takes (account, context key, regions, refresh, URL policy). */
export type KeyLayerSettings = KeyConfigSettings;

export function keyLayerSettings(config: Config): KeyLayerSettings {
  return keyConfigSettings(config);
}

export type KeyLayer = ReturnType<typeof createKeyLayer>;

export function createKeyLayer(input: { db: Kysely<Database>; gateway: KmsGateway; platformKeyArn: string; settings: KeyLayerSettings }) {
  const { settings } = input;
  const factory = createProviderFactory({
    aws: {
      gateway: input.gateway,
      platformAccountId: settings.platformAccountId,
      encryptionContextKey: settings.encryptionContextKey,
      allowedRegions: settings.allowedRegions,
      defaultRegion: settings.defaultRegion,
      platformKeyArn: input.platformKeyArn,
      // Org data keys are bound to the organization alone (what stored blobs and key policies use).
      bindDataKeyId: false,
    },
    xks: { policy: settings.xksUrlPolicy, platformId: settings.platformAccountId },
  });
  const secrets = createSecretBox({ platformKey: factory.forConfiguration('None', {}) });
  const keys = createOrgKeys({ dal: createKeyConfigDal(input.db), factory, secrets, refreshMs: settings.refreshMs });
  return { factory, secrets, keys, keyPolicyStatements: platformKeyPolicyStatements };
}
