import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyProviderError, type DataKeyBinding, type KeyProvider, type WrappedDataKey } from '../../providers/key-provider.js';
import { createSecretBox } from './secret-box.js';

/**
 * The platform key stands in as a small keyring over node:crypto (the module's one dependency): it
 * wraps a data key for a binding and opens it only for the same binding, as the AWS adapter does.
 */
function platformKey(): Pick<KeyProvider, 'generateDataKey' | 'unwrapDataKey'> {
  const keys = new Map<string, { plaintext: Buffer; binding: string }>();
  const box = {
    async generateDataKey(binding: DataKeyBinding) {
      const plaintext = randomBytes(32);
      const blob = randomBytes(48);
      keys.set(blob.toString('hex'), { plaintext: Buffer.from(plaintext), binding: JSON.stringify(binding) });
      return { plaintext, wrapped: { blob, keyId: 'arn:aws:kms:us-east-1:444455556666:key/platform' } };
    },
    async unwrapDataKey(wrapped: WrappedDataKey, binding: DataKeyBinding) {
      const entry = keys.get(wrapped.blob.toString('hex'));
      if (!entry || entry.binding !== JSON.stringify(binding)) throw new KeyProviderError('InvalidCiphertext', 'does not open', { providerError: 'InvalidCiphertextException' });
      return Buffer.from(entry.plaintext);
    },
  };
  return box;
}

describe('secret box: configuration secrets under the platform key', () => {
  const secrets = { apiKey: 'a'.repeat(43), clientKey: '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI…\n-----END PRIVATE KEY-----\n' };

  it('opens what it sealed, and the sealed bytes hold no secret', async () => {
    const box = createSecretBox({ platformKey: platformKey() });
    const sealed = await box.seal('org-1', 'config-1', secrets);
    expect(sealed.includes(Buffer.from(secrets.apiKey))).toBe(false);
    expect(sealed.includes(Buffer.from('BEGIN PRIVATE KEY'))).toBe(false);
    expect(await box.open('org-1', 'config-1', sealed)).toEqual(secrets);
  });

  it('refuses the secrets of another organization or another configuration', async () => {
    const box = createSecretBox({ platformKey: platformKey() });
    const sealed = await box.seal('org-1', 'config-1', secrets);
    await expect(box.open('org-2', 'config-1', sealed)).rejects.toThrow(KeyProviderError);
    await expect(box.open('org-1', 'config-2', sealed)).rejects.toThrow(KeyProviderError);
  });

  it('refuses altered bytes, a truncated blob and an unknown version', async () => {
    const box = createSecretBox({ platformKey: platformKey() });
    const sealed = await box.seal('org-1', 'config-1', secrets);
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1]! ^= 1;
    await expect(box.open('org-1', 'config-1', flipped)).rejects.toThrow(/authentication failed/);
    await expect(box.open('org-1', 'config-1', sealed.subarray(0, 20))).rejects.toThrow(/truncated/);
    const version = Buffer.from(sealed);
    version[0] = 2;
    await expect(box.open('org-1', 'config-1', version)).rejects.toThrow(/unknown version/);
  });
});
