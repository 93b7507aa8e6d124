import { parseAliasArn } from './aws-kms/alias-arn.js';
import { createAwsKmsProvider, type AwsKmsProviderDeps } from './aws-kms/index.js';
import { type KeyConfigurationType, type KeyProvider } from './key-provider.js';
import { typeOwningReference } from './registry.js';
import { createXksProvider } from './xks/index.js';
import type { XksUrlPolicy } from './xks/url-policy.js';

/**
 * Builds the adapter for a configuration: the one place that maps a key configuration type to its
 * adapter. What each adapter needs from the platform (the AWS gateway, the XKS URL policy) is given
 * once, by the composition root.
 */

export interface ProviderEnvironment {
  aws: Omit<AwsKmsProviderDeps, 'type' | 'reference'> & { platformKeyArn: string };
  xks: { policy: XksUrlPolicy; platformId: string; timeoutMs?: number };
}

/** A configuration's fields: url and the type's other fields, secrets included (in memory only). */
export type ProviderFields = Record<string, string | undefined>;

type AdapterFactory = (fields: ProviderFields, env: ProviderEnvironment) => KeyProvider;

const ADAPTERS: Record<KeyConfigurationType, AdapterFactory> = {
  KmsSymmetric: (f, env) => createAwsKmsProvider({ ...env.aws, type: 'KmsSymmetric', reference: f.url ?? '' }),
  None: (_f, env) => createAwsKmsProvider({ ...env.aws, type: 'None', reference: env.aws.platformKeyArn }),
  LocalKeyManager: (f, env) =>
    createXksProvider({
      config: {
        url: f.url ?? '',
        keyId: f.keyId ?? '',
        apiId: f.apiId ?? '',
        apiKey: f.apiKey ?? '',
        ...(f.caBundle ? { caBundle: f.caBundle } : {}),
        ...(f.clientCertificate ? { clientCertificate: f.clientCertificate } : {}),
        ...(f.clientKey ? { clientKey: f.clientKey } : {}),
      },
      policy: env.xks.policy,
      platformId: env.xks.platformId,
      ...(env.xks.timeoutMs ? { timeoutMs: env.xks.timeoutMs } : {}),
    }),
};

export type ProviderFactory = ReturnType<typeof createProviderFactory>;

export function createProviderFactory(env: ProviderEnvironment) {
  return {
    /** The adapter of a configuration (throws a Misconfigured KeyProviderError for unusable fields). */
    forConfiguration(type: KeyConfigurationType, fields: ProviderFields): KeyProvider {
      return ADAPTERS[type](fields, env);
    },
    /**
     * The adapter for a recorded key reference when the reference alone is enough — an AWS alias or
     * key ARN (KMS needs only the platform's credentials) or the platform key; undefined when the
     * reference needs its stored configuration (an XKS key needs the proxy's credentials).
     */
    forReference(reference: string): KeyProvider | undefined {
      if (reference === env.aws.platformKeyArn) return ADAPTERS.None({}, env);
      if (typeOwningReference(reference)?.type !== 'KmsSymmetric') return undefined;
      if (parseAliasArn(reference, env.aws.allowedRegions).ok) return ADAPTERS.KmsSymmetric({ url: reference }, env);
      // A key ARN: the adapter is bound to no alias, it opens what that key wraps.
      return createAwsKmsProvider({ ...env.aws, type: 'None', reference });
    },
  };
}
