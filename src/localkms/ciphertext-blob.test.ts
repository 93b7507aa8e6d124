import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BLOB_VERSION, encodeEncryptionContext, InvalidBlobError, openBlob, readBlobKeyId, sealBlob } from './ciphertext-blob.js';

const material = Buffer.alloc(32, 7);
const keyId = '1234abcd-12ab-34cd-56ef-1234567890ab';

describe('ciphertext blob', () => {
  it('round-trips and names its key', () => {
    const blob = sealBlob(material, keyId, Buffer.from('secret'), { org: 'o-1' });
    expect(blob[0]).toBe(BLOB_VERSION);
    expect(readBlobKeyId(blob)).toBe(keyId);
    expect(openBlob(material, blob, { org: 'o-1' }).toString()).toBe('secret');
    expect(blob.length).toBe(2 + keyId.length + 12 + 'secret'.length + 16);
  });

  it('opens whatever the order of the context pairs', () => {
    const blob = sealBlob(material, keyId, Buffer.from('x'), { b: '2', a: '1' });
    expect(openBlob(material, blob, { a: '1', b: '2' }).toString()).toBe('x');
  });

  it.each([
    [{ org: 'o-2' }],
    [{ Org: 'o-1' }],
    [{}],
    [{ org: 'o-1', extra: '' }],
  ])('refuses a different context %j', (context) => {
    const blob = sealBlob(material, keyId, Buffer.from('x'), { org: 'o-1' });
    expect(() => openBlob(material, blob, context)).toThrow(InvalidBlobError);
  });

  it('refuses any single altered byte', () => {
    const blob = sealBlob(material, keyId, Buffer.from('payload'), {});
    for (let i = 0; i < blob.length; i++) {
      const bad = Buffer.from(blob);
      bad[i] ^= 0x01;
      expect(() => openBlob(material, bad, {}), `byte ${i}`).toThrow(InvalidBlobError);
    }
  });

  it('refuses another key material and truncated or foreign blobs', () => {
    const blob = sealBlob(material, keyId, Buffer.from('x'), {});
    expect(() => openBlob(randomBytes(32), blob, {})).toThrow(InvalidBlobError);
    expect(() => readBlobKeyId(blob.subarray(0, 20))).toThrow(InvalidBlobError);
    expect(() => readBlobKeyId(Buffer.from('AQIDBAUGBwgJ', 'base64'))).toThrow(InvalidBlobError);
    expect(() => readBlobKeyId(Buffer.alloc(0))).toThrow(InvalidBlobError);
  });

  it('encodes the context canonically (test vector)', () => {
    // 2 pairs; "a"="1" sorts before "b"="22".
    expect(encodeEncryptionContext({ b: '22', a: '1' }).toString('hex')).toBe('0002' + '0001' + '61' + '0001' + '31' + '0001' + '62' + '0002' + '3232');
    expect(encodeEncryptionContext({}).toString('hex')).toBe('0000');
    // Separators cannot be forged: {"a:b": "c"} and {"a": "b:c"} differ.
    expect(encodeEncryptionContext({ 'a:b': 'c' }).equals(encodeEncryptionContext({ a: 'b:c' }))).toBe(false);
  });
});
