import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aesGcmOpen, encodeAad } from '../../crypto/index.js';
import { KeyProviderError, type DataKeyBinding, type KeyProvider, type WrappedDataKey } from '../../providers/key-provider.js';
import { createSecretBox } from './secret-box.js';

/**
 * The platform key stands in as a small keyring over node:crypto (the module's one dependency): it
 * wraps a data key for a binding and opens it only for the same binding, as the AWS adapter does.
 */
function platformKey(opts: { ignoreBinding?: boolean; keyLength?: number } = {}) {
  const keys = new Map<string, { plaintext: Buffer; binding: string }>();
  /** What the module was given and handed out, to look at afterwards. */
  const seen = { generated: [] as Array<{ binding: DataKeyBinding; plaintext: Buffer; blob: Buffer; copy: Buffer }>, unwrapped: [] as Buffer[] };
  const box: Pick<KeyProvider, 'generateDataKey' | 'unwrapDataKey'> = {
    async generateDataKey(binding: DataKeyBinding) {
      const plaintext = randomBytes(32);
      const blob = randomBytes(48);
      keys.set(blob.toString('hex'), { plaintext: Buffer.from(plaintext), binding: JSON.stringify(binding) });
      seen.generated.push({ binding, plaintext, blob: Buffer.from(blob), copy: Buffer.from(plaintext) });
      return { plaintext, wrapped: { blob, keyId: 'arn:aws:kms:us-east-1:444455556666:key/platform' } };
    },
    async unwrapDataKey(wrapped: WrappedDataKey, binding: DataKeyBinding) {
      const entry = keys.get(wrapped.blob.toString('hex'));
      if (!entry || (!opts.ignoreBinding && entry.binding !== JSON.stringify(binding))) throw new KeyProviderError('InvalidCiphertext', 'does not open', { providerError: 'InvalidCiphertextException' });
      const key = opts.keyLength ? Buffer.alloc(opts.keyLength, 1) : Buffer.from(entry.plaintext);
      seen.unwrapped.push(key);
      return key;
    },
  };
  return Object.assign(box, { seen });
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

  it('writes the documented format, which secrets sealed by an earlier build are read with: version, key id, wrapped key, nonce, tag, ciphertext under the documented AAD and binding', async () => {
    const platform = platformKey();
    const sealed = await createSecretBox({ platformKey: platform }).seal('org-1', 'config-1', secrets);
    const [generated] = platform.seen.generated;
    // The binding is part of the format: a different one could not open what an earlier build sealed.
    expect(generated!.binding).toEqual({ orgId: 'org-1', dataKeyId: 'key-configuration-secrets:config-1' });
    expect(sealed[0]).toBe(0x01);
    const keyIdLength = sealed.readUInt16BE(1);
    expect(sealed.subarray(3, 3 + keyIdLength).toString('utf8')).toBe('arn:aws:kms:us-east-1:444455556666:key/platform');
    let at = 3 + keyIdLength;
    const blobLength = sealed.readUInt16BE(at);
    expect(sealed.subarray(at + 2, at + 2 + blobLength)).toEqual(generated!.blob);
    at += 2 + blobLength;
    const nonce = sealed.subarray(at, at + 12);
    const tag = sealed.subarray(at + 12, at + 28);
    const ciphertext = sealed.subarray(at + 28);
    const json = aesGcmOpen(generated!.copy, nonce, ciphertext, tag, encodeAad('convault/key-configuration-secrets', 1, ['org-1', 'config-1']));
    expect(JSON.parse(json.toString('utf8'))).toEqual(secrets);
  });

  it('zeroes the plaintext data key once it sealed or opened with it', async () => {
    const platform = platformKey();
    const box = createSecretBox({ platformKey: platform });
    const sealed = await box.seal('org-1', 'config-1', secrets);
    expect(platform.seen.generated[0]!.plaintext.equals(Buffer.alloc(32))).toBe(true);
    await box.open('org-1', 'config-1', sealed);
    expect(platform.seen.unwrapped[0]!.equals(Buffer.alloc(32))).toBe(true);
    // Also when opening fails.
    const flipped = Buffer.from(sealed);
    flipped[flipped.length - 1]! ^= 1;
    await expect(box.open('org-1', 'config-1', flipped)).rejects.toThrow();
    expect(platform.seen.unwrapped[1]!.equals(Buffer.alloc(32))).toBe(true);
  });

  it('binds the organization and the configuration in its own AAD too, not only through the platform key', async () => {
    const box = createSecretBox({ platformKey: platformKey({ ignoreBinding: true }) });
    const sealed = await box.seal('org-1', 'config-1', secrets);
    await expect(box.open('org-2', 'config-1', sealed)).rejects.toThrow(/authentication failed/);
    await expect(box.open('org-1', 'config-2', sealed)).rejects.toThrow(/authentication failed/);
    expect(await box.open('org-1', 'config-1', sealed)).toEqual(secrets);
  });

  it('refuses a data key of the wrong length from the platform key', async () => {
    const box = createSecretBox({ platformKey: platformKey({ keyLength: 16 }) });
    const sealed = await box.seal('org-1', 'config-1', secrets);
    await expect(box.open('org-1', 'config-1', sealed)).rejects.toThrow('the platform key returned a data key of the wrong length');
  });

  it('calls every cut short of the ciphertext truncated, and an empty ciphertext a failed authentication', async () => {
    const box = createSecretBox({ platformKey: platformKey() });
    const sealed = await box.seal('org-1', 'config-1', secrets);
    const ciphertextStart = sealed.length - Buffer.byteLength(JSON.stringify(secrets));
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: ciphertextStart - 1 }), async (cut) => {
        await expect(box.open('org-1', 'config-1', sealed.subarray(0, cut))).rejects.toThrow('the sealed secrets of the key configuration are truncated');
      }),
    );
    await expect(box.open('org-1', 'config-1', sealed.subarray(0, ciphertextStart))).rejects.toThrow(/authentication failed/);
  });
});

