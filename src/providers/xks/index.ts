import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createXksClient, type XksClient } from '../../xks-client/index.js';
import { EXTERNAL_KEY_ID, type RequestMetadata } from '../../xks-protocol/index.js';
import { KeyProviderError, type RemediationOptions, type DataKeyBinding, type KeyDescription, type KeyProvider, type WrappedDataKey } from '../key-provider.js';
import { createTestRun } from '../test-run.js';
import { classifyXksFailure, xksRemediation } from './failures.js';
import { guardedLookup, validateXksProxyUrl, type XksUrlPolicy } from './url-policy.js';
import { bindingAad, decodeWrappedKey, encodeWrappedKey } from './wrapped-key.js';

export { classifyAddress, guardedLookup, validateXksProxyUrl, xksUrlPolicyFromEnv, type AddressClass, type XksUrlPolicy } from './url-policy.js';
export { classifyXksFailure, xksRemediation } from './failures.js';

/**
 * The LocalKeyManager adapter: the organization's key lives behind the customer's XKS proxy.
 * convault generates each AES-256 data key itself and has the proxy wrap it with Encrypt (AES_GCM,
 * AAD binding the organization and the data key, SHA_256 integrity value checked by the client);
 * Decrypt unwraps it. The proxy never sees more than the 32 key bytes.
 */

export interface XksKeyConfiguration {
  /** `https://host[:port][/<path-prefix>]/kms/xks/v1` */
  url: string;
  /** The external key id at the proxy. */
  keyId: string;
  /** SigV4 access key id (Genesys's apiId). */
  apiId: string;
  /** SigV4 secret access key (Genesys's apiKey): secret. */
  apiKey: string;
  /** PEM CA bundle trusted for this proxy instead of the system's. */
  caBundle?: string;
  /** PEM client certificate and key for mutual TLS. */
  clientCertificate?: string;
  clientKey?: string;
}

export interface XksProviderDeps {
  config: XksKeyConfiguration;
  policy: XksUrlPolicy;
  /** Names the platform in requestMetadata (e.g. the platform account id). */
  platformId: string;
  timeoutMs?: number;
  now?: () => number;
}

const DATA_KEY_BYTES = 32;

/** requestMetadata of every call: which platform asks, for which organization, with which external key. */
export function xksRequestMetadata(platformId: string, orgId: string, keyId: string): Partial<RequestMetadata> {
  return {
    awsPrincipalArn: `arn:convault:iam::${platformId}:organization/${orgId}`,
    kmsKeyArn: `arn:convault:xks::${orgId}:external-key/${keyId}`,
    kmsViaService: 'convault',
  };
}

/** `<proxy URI prefix>/keys/<external key id>`: one key at one proxy (the registry's canonical reference). */
export function xksKeyReference(proxyUrl: string, keyId: string): string {
  return `${proxyUrl}/keys/${keyId}`;
}

export function createXksProvider(deps: XksProviderDeps): KeyProvider {
  const { config } = deps;
  const url = validateXksProxyUrl(config.url, deps.policy);
  if (!url.ok) throw new KeyProviderError('Misconfigured', url.message, { providerError: 'InvalidProxyUrl' });
  if (!EXTERNAL_KEY_ID.test(config.keyId)) {
    throw new KeyProviderError('Misconfigured', 'keyId must be 1-128 characters of A-Z a-z 0-9 - . _', { providerError: 'InvalidKeyId' });
  }
  if (Boolean(config.clientCertificate) !== Boolean(config.clientKey)) {
    throw new KeyProviderError('Misconfigured', 'mutual TLS needs both clientCertificate and clientKey', { providerError: 'InvalidClientCertificate' });
  }
  const client: XksClient = createXksClient({
    url: url.value.url,
    accessKeyId: config.apiId,
    secretAccessKey: config.apiKey,
    ...(config.caBundle ? { ca: config.caBundle } : {}),
    ...(config.clientCertificate && config.clientKey ? { clientCert: { cert: config.clientCertificate, key: config.clientKey } } : {}),
    lookup: guardedLookup(deps.policy),
    ...(deps.timeoutMs ? { timeoutMs: deps.timeoutMs } : {}),
  });
  // The key's reference: which proxy (and logical key store) and which key. Recorded with every
  // wrapped data key, so a data key made under another configuration is never sent to this proxy.
  const proxyUrl = url.value.url;
  const keyReference = xksKeyReference(proxyUrl, config.keyId);
  const meta = (orgId: string) => xksRequestMetadata(deps.platformId, orgId, config.keyId);
  const classify = (err: unknown, operation?: string) => classifyXksFailure(err, operation);
  const remediation = (failure: KeyProviderError, opts: RemediationOptions = {}) => {
    const text = xksRemediation(failure, { url: url.value.url, keyId: config.keyId });
    return opts.nextStep ? text.replace(/then test again/g, `then ${opts.nextStep}`) : text;
  };
  const guarded = async <T>(operation: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw classify(err, operation);
    }
  };

  async function describeFor(orgId: string): Promise<KeyDescription> {
    const m = await guarded('GetKeyMetadata', () => client.getKeyMetadata(config.keyId, meta(orgId)));
    const both = m.keyUsage.includes('ENCRYPT') && m.keyUsage.includes('DECRYPT');
    const state = m.keyStatus === 'ENABLED' ? (both ? 'Enabled' : 'Unusable') : 'Disabled';
    return {
      keyId: keyReference,
      state,
      usable: state === 'Enabled' && m.keySpec === 'AES_256',
      detail: `${config.keyId} is ${m.keyStatus}, ${m.keySpec}, usage ${m.keyUsage.join(',') || 'none'}`,
    };
  }

  async function wrap(plaintext: Buffer, binding: DataKeyBinding): Promise<WrappedDataKey> {
    const sealed = await guarded('Encrypt', () => client.encrypt(config.keyId, { plaintext, aad: bindingAad(binding), requestMetadata: meta(binding.orgId) }));
    return { blob: encodeWrappedKey(sealed), keyId: keyReference };
  }

  /** The external key id a recorded key names: a reference of this proxy, or a bare id (this proxy's). */
  function externalKeyId(recorded: string): string {
    const prefix = `${proxyUrl}/keys/`;
    if (recorded.startsWith(prefix) && EXTERNAL_KEY_ID.test(recorded.slice(prefix.length))) return recorded.slice(prefix.length);
    if (EXTERNAL_KEY_ID.test(recorded)) return recorded;
    throw new KeyProviderError('Misconfigured', `the data key was wrapped by ${recorded}, not by a key of the proxy at ${proxyUrl}`, { providerError: 'ForeignKeyReference' });
  }

  async function unwrap(wrapped: WrappedDataKey, binding: DataKeyBinding): Promise<Buffer> {
    const parts = decodeWrappedKey(wrapped.blob);
    // The recorded key id, not the configured one: a configuration may have moved to another key since.
    return guarded('Decrypt', () => client.decrypt(externalKeyId(wrapped.keyId), { ...parts, aad: bindingAad(binding), requestMetadata: meta(binding.orgId) }));
  }

  return {
    type: 'LocalKeyManager',
    reference: keyReference,
    describe: () => describeFor('platform'),
    async generateDataKey(binding) {
      const plaintext = randomBytes(DATA_KEY_BYTES);
      try {
        return { plaintext, wrapped: await wrap(plaintext, binding) };
      } catch (err) {
        plaintext.fill(0);
        throw err;
      }
    },
    wrapDataKey: wrap,
    unwrapDataKey: unwrap,
    classify,
    remediation,

    async test(orgId) {
      const run = createTestRun({ classify, remediation, ...(deps.now ? { now: deps.now } : {}) });
      await run.step('GetHealthStatus', () => guarded('GetHealthStatus', () => client.getHealthStatus()), (h) => {
        const states = h.ekmFleetDetails.map((e) => e.healthStatus);
        if (!states.includes('ACTIVE') && !states.includes('DEGRADED')) {
          throw new KeyProviderError('Unavailable', `every key manager behind the proxy is ${states.join(', ')}`, { providerError: 'EkmUnavailable' });
        }
        return `${h.xksProxyVendor} ${h.xksProxyModel} reachable; key managers ${states.join(', ')}`;
      });
      await run.step('GetKeyMetadata', async () => {
        const d = await describeFor(orgId);
        if (d.state === 'Disabled') throw new KeyProviderError('Disabled', d.detail, { providerError: 'InvalidStateException' });
        if (!d.usable) throw new KeyProviderError('Misconfigured', d.detail, { providerError: 'InvalidKeyUsageException' });
        return d;
      }, (d) => d.detail);
      const binding = { orgId, dataKeyId: `key-test-${randomBytes(8).toString('hex')}` };
      const dataKey = randomBytes(DATA_KEY_BYTES);
      try {
        const wrapped = await run.step('WrapDataKey', () => wrap(dataKey, binding), () => `data key wrapped under ${config.keyId} (AES_GCM, integrity value verified)`);
        // A fresh Decrypt call: what every read of the data will need.
        const back = wrapped && (await run.step('UnwrapDataKey', () => unwrap(wrapped, binding)));
        if (back) {
          await run.step('CompareDataKey', () => {
            const same = back.length === dataKey.length && timingSafeEqual(back, dataKey);
            back.fill(0);
            if (!same) throw new KeyProviderError('Internal', 'the unwrapped data key differs from the one wrapped', { providerError: 'Mismatch' });
          });
        }
      } finally {
        dataKey.fill(0);
      }
      return run.report({ keyArn: keyReference });
    },

    close: () => client.close(),
  };
}
