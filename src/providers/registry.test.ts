import { describe, expect, it } from 'vitest';
import { KEY_CONFIGURATION_TYPES, keyConfigurationType, maskSecretFields, type ReferenceContext } from './registry.js';

const CTX: ReferenceContext = { allowedRegions: ['us-east-1'], xksUrlPolicy: { allowHttpLoopback: false, allowPrivateNetworks: false } };

describe('key configuration type registry', () => {
  it('states each type\'s capabilities', () => {
    expect(Object.keys(KEY_CONFIGURATION_TYPES).sort()).toEqual(['KmsSymmetric', 'LocalKeyManager', 'None']);
    expect(KEY_CONFIGURATION_TYPES.KmsSymmetric).toMatchObject({ customerOwned: true, supportsHealthProbe: true, supportsEncryptData: true, supportsServerSideRewrap: true });
    expect(KEY_CONFIGURATION_TYPES.LocalKeyManager).toMatchObject({ customerOwned: true, supportsHealthProbe: true, supportsEncryptData: false, supportsServerSideRewrap: false });
    expect(KEY_CONFIGURATION_TYPES.None).toMatchObject({ customerOwned: false, supportsHealthProbe: false, supportsEncryptData: false });
    expect(keyConfigurationType('Native')).toBeUndefined();
    expect(keyConfigurationType('toString')).toBeUndefined();
  });

  it('validates each type\'s reference with its own rules', () => {
    const kms = KEY_CONFIGURATION_TYPES.KmsSymmetric.validateReference;
    expect(kms({ url: 'arn:aws:kms:us-east-1:111122223333:alias/acme' }, CTX)).toEqual({ ok: true, value: 'arn:aws:kms:us-east-1:111122223333:alias/acme' });
    expect(kms({ url: 'arn:aws:kms:eu-west-1:111122223333:alias/acme' }, CTX).ok).toBe(false);
    const xks = KEY_CONFIGURATION_TYPES.LocalKeyManager.validateReference;
    expect(xks({ url: 'https://xks.acme.example/tenant/kms/xks/v1/', keyId: 'k-1' }, CTX)).toEqual({ ok: true, value: 'https://xks.acme.example/tenant/kms/xks/v1/keys/k-1' });
    expect(xks({ url: 'https://xks.acme.example/kms/xks/v1', keyId: '..' }, CTX).ok).toBe(false);
    expect(xks({ url: 'http://127.0.0.1:9000/kms/xks/v1', keyId: 'k' }, CTX).ok).toBe(false);
    expect(xks({ url: 'http://127.0.0.1:9000/kms/xks/v1', keyId: 'k' }, { ...CTX, xksUrlPolicy: { allowHttpLoopback: true, allowPrivateNetworks: false } }).ok).toBe(true);
  });

  it('masks exactly the secret fields', () => {
    const masked = maskSecretFields('LocalKeyManager', { url: 'https://x.example/kms/xks/v1', keyId: 'k', apiId: 'AKIA', apiKey: 'secret', clientKey: 'pem' });
    expect(masked).toEqual({ url: 'https://x.example/kms/xks/v1', keyId: 'k', apiId: 'AKIA', apiKey: '********', clientKey: '********' });
    expect(KEY_CONFIGURATION_TYPES.LocalKeyManager.fields.filter((f) => f.secret).map((f) => f.name)).toEqual(['apiKey', 'clientKey']);
  });
});
