import { parseAliasArn } from './aws-kms/alias-arn.js';
import { EXTERNAL_KEY_ID } from '../xks-protocol/index.js';
import type { KeyConfigurationType, ReferenceResult } from './key-provider.js';
import { validateXksProxyUrl, type XksUrlPolicy } from './xks/url-policy.js';

/**
 * Every key configuration type and what it can do. Services ask these capabilities (is the key the
 * customer's? can it be probed? encrypt data? rewrap inside the provider?) instead of comparing
 * type names, so a new type is one entry here and one adapter folder.
 */

export interface KeyFieldSpec {
  name: string;
  required: boolean;
  /** Write-only: stored encrypted, never returned (GET shows it masked). */
  secret: boolean;
  description: string;
  /** PEM text (a CA bundle, a certificate, a private key): entered as several lines. */
  format?: 'pem';
}

export interface ReferenceContext {
  allowedRegions: readonly string[];
  xksUrlPolicy: XksUrlPolicy;
  /** The platform's account: its keys are never an organization's key. */
  platformAccountId?: string;
}

export interface KeyConfigurationTypeSpec {
  type: KeyConfigurationType;
  label: string;
  /** The key belongs to the organization (revocable by it); false: the platform's own key. */
  customerOwned: boolean;
  /** Key health probes apply (the key can be taken away, so its state is watched). */
  supportsHealthProbe: boolean;
  /** POST …/encrypt and …/decrypt (Encrypt/Decrypt Data with a keyring the customer's back end can use). */
  supportsEncryptData: boolean;
  /** The provider can move a wrapped key to another of its keys without the plaintext leaving it. */
  supportsServerSideRewrap: boolean;
  fields: readonly KeyFieldSpec[];
  /** Checks the configuration's fields; the value is the canonical key reference. */
  validateReference(fields: Record<string, unknown>, ctx: ReferenceContext): ReferenceResult<string>;
  /**
   * Whether a recorded key reference (what wraps a stored data key) is one of this type's
   * providers: how a data key, or a rewrap's target, finds the adapter that opens it.
   */
  ownsReference(reference: string): boolean;
  /**
   * Why a saved key reference is refused when the configuration is resolved for use (a rule it may
   * break that an earlier build did not check on save); undefined when it may be used.
   */
  refusedReference?(reference: string, platformAccountId: string): string | undefined;
  /** The configuration's url as stored and answered, from its canonical reference. */
  urlOf(reference: string): string;
  /** Name of the Test step that reports a configuration refused before any call. */
  syntaxStep: string;
}

const AWS_KEY_REFERENCE = /^arn:aws[a-z-]*:kms:/;

const KMS_SYMMETRIC: KeyConfigurationTypeSpec = {
  type: 'KmsSymmetric',
  label: 'AWS KMS Symmetric',
  customerOwned: true,
  supportsHealthProbe: true,
  supportsEncryptData: true,
  supportsServerSideRewrap: true,
  fields: [{ name: 'url', required: true, secret: false, description: 'alias ARN of a customer managed symmetric key' }],
  validateReference(fields, ctx) {
    const parsed = parseAliasArn(fields.url, ctx.allowedRegions, ctx.platformAccountId);
    return parsed.ok ? { ok: true, value: parsed.value.arn } : parsed;
  },
  ownsReference: (reference) => AWS_KEY_REFERENCE.test(reference),
  // A configuration saved by an earlier build may name the platform's account: never used as the org's key.
  refusedReference: (reference, platformAccountId) =>
    parseAliasArn(reference, [reference.split(':')[3] ?? ''], platformAccountId).ok
      ? undefined
      : `The configured key ${reference} is in the platform's own AWS account; the platform's keys are never an organization's key. Configure a key of your own account.`,
  urlOf: (reference) => reference,
  syntaxStep: 'ArnSyntax',
};

const LOCAL_KEY_MANAGER: KeyConfigurationTypeSpec = {
  type: 'LocalKeyManager',
  label: 'Local key manager (XKS proxy)',
  customerOwned: true,
  supportsHealthProbe: true,
  // The customer's back end cannot read data sealed under a convault-wrapped data key without a
  // keyring of ours; until one is documented and tested, Encrypt/Decrypt Data is refused.
  supportsEncryptData: false,
  // The proxy has no re-encrypt operation: a rewrap unwraps and wraps again through convault.
  supportsServerSideRewrap: false,
  fields: [
    { name: 'url', required: true, secret: false, description: 'XKS proxy URI prefix, https://host[/prefix]/kms/xks/v1' },
    { name: 'keyId', required: true, secret: false, description: 'external key id at the proxy' },
    { name: 'apiId', required: true, secret: false, description: 'SigV4 access key id' },
    { name: 'apiKey', required: true, secret: true, description: 'SigV4 secret access key' },
    { name: 'caBundle', required: false, secret: false, description: 'PEM CA bundle trusted for the proxy', format: 'pem' },
    { name: 'clientCertificate', required: false, secret: false, description: 'PEM client certificate for mutual TLS', format: 'pem' },
    { name: 'clientKey', required: false, secret: true, description: 'PEM private key of the client certificate', format: 'pem' },
  ],
  validateReference(fields, ctx) {
    const url = validateXksProxyUrl(fields.url, ctx.xksUrlPolicy);
    if (!url.ok) return url;
    const keyId = fields.keyId;
    if (typeof keyId !== 'string' || !EXTERNAL_KEY_ID.test(keyId) || keyId === '.' || keyId === '..') {
      return { ok: false, message: 'keyId must be 1-128 characters of A-Z a-z 0-9 - . _ (the external key id at the proxy).' };
    }
    return { ok: true, value: `${url.value.url}/keys/${keyId}` };
  },
  ownsReference: (reference) => /^https?:\/\/[^/]+(\/.*)?\/kms\/xks\/v1\/keys\/[^/]+$/.test(reference),
  urlOf: (reference) => reference.replace(/\/keys\/[^/]+$/, ''),
  syntaxStep: 'Configuration',
};

const NONE: KeyConfigurationTypeSpec = {
  type: 'None',
  label: 'None',
  customerOwned: false,
  supportsHealthProbe: false,
  supportsEncryptData: false,
  supportsServerSideRewrap: true,
  fields: [],
  validateReference: () => ({ ok: true, value: '' }),
  // The platform key is an AWS KMS key: its data keys open through the KmsSymmetric adapter.
  ownsReference: () => false,
  urlOf: () => '',
  syntaxStep: 'Configuration',
};

export const KEY_CONFIGURATION_TYPES: Readonly<Record<KeyConfigurationType, KeyConfigurationTypeSpec>> = {
  KmsSymmetric: KMS_SYMMETRIC,
  LocalKeyManager: LOCAL_KEY_MANAGER,
  None: NONE,
};

export function keyConfigurationType(type: unknown): KeyConfigurationTypeSpec | undefined {
  return typeof type === 'string' && Object.hasOwn(KEY_CONFIGURATION_TYPES, type) ? KEY_CONFIGURATION_TYPES[type as KeyConfigurationType] : undefined;
}

/** A copy of a configuration's fields with every secret field masked, for GET answers and logs. */
export function maskSecretFields(type: KeyConfigurationType, fields: Record<string, unknown>): Record<string, unknown> {
  const out = { ...fields };
  for (const f of KEY_CONFIGURATION_TYPES[type].fields) if (f.secret && out[f.name] !== undefined) out[f.name] = '********';
  return out;
}

/** The type whose adapter opens data keys wrapped under this recorded reference. */
export function typeOwningReference(reference: string): KeyConfigurationTypeSpec | undefined {
  return Object.values(KEY_CONFIGURATION_TYPES).find((spec) => spec.ownsReference(reference));
}

/** Non-secret fields of a type other than url, as stored (JSON) and answered. */
export function publicFieldsOf(type: KeyConfigurationType, fields: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of KEY_CONFIGURATION_TYPES[type].fields) {
    if (f.secret || f.name === 'url') continue;
    const v = fields[f.name];
    if (typeof v === 'string' && v !== '') out[f.name] = v;
  }
  return out;
}

/** The secret fields of a type that are set, e.g. { apiKey } — sealed, never answered. */
export function secretFieldsOf(type: KeyConfigurationType, fields: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of KEY_CONFIGURATION_TYPES[type].fields) {
    const v = fields[f.name];
    if (f.secret && typeof v === 'string' && v !== '') out[f.name] = v;
  }
  return out;
}

/** The types whose keys key health probes (the scheduler's and the metrics' queries). */
export const HEALTH_PROBED_TYPES: readonly KeyConfigurationType[] = Object.values(KEY_CONFIGURATION_TYPES)
  .filter((spec) => spec.supportsHealthProbe)
  .map((spec) => spec.type);
