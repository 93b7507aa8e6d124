import { Buffer } from 'node:buffer';
import { describe, expect, it } from 'vitest';
import { NodeSha256 } from './sha256-hash.js';

type Input = string | ArrayBuffer | ArrayBufferView;

const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

/** The bytes in an ArrayBuffer of their own. */
function arrayBufferOf(bytes: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(bytes.length);
  new Uint8Array(out).set(bytes);
  return out;
}

/** The bytes as a view at a non-zero offset into a larger buffer, other bytes on either side. */
function subarrayOf(bytes: Uint8Array): Uint8Array {
  const big = new Uint8Array(bytes.length + 7).fill(0xee);
  big.set(bytes, 3);
  return big.subarray(3, 3 + bytes.length);
}

/** The same, as a DataView: a view that is not a byte array (no length, no indices). */
function dataViewOf(bytes: Uint8Array): DataView {
  const big = new Uint8Array(bytes.length + 9).fill(0xee);
  big.set(bytes, 5);
  return new DataView(big.buffer, 5, bytes.length);
}

/** Every form the signer may hand over, each holding exactly `s` in UTF-8. */
const formsOf = (s: string): Input[] => [s, arrayBufferOf(utf8(s)), utf8(s), subarrayOf(utf8(s)), dataViewOf(utf8(s))];

async function hexDigest(secret: Input | undefined, ...chunks: Input[]): Promise<string> {
  const hash = new NodeSha256(secret);
  for (const chunk of chunks) hash.update(chunk);
  return Buffer.from(await hash.digest()).toString('hex');
}

// FIPS 180-2, appendix B.1, and the digest of the empty message.
const SHA256_ABC = 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad';
const SHA256_EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

// RFC 4231, HMAC-SHA256 of test cases 1, 2 and 6 (6: a 131-byte key, longer than the 64-byte block).
const RFC4231 = [
  {
    name: 'test case 1',
    key: new Uint8Array(20).fill(0x0b),
    data: 'Hi There',
    mac: 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7',
  },
  {
    name: 'test case 2',
    key: utf8('Jefe'),
    data: 'what do ya want for nothing?',
    mac: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  },
  {
    name: 'test case 6 (key longer than the block)',
    key: new Uint8Array(131).fill(0xaa),
    data: 'Test Using Larger Than Block-Size Key - Hash Key First',
    mac: '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54',
  },
];

describe('NodeSha256', () => {
  it('hashes the FIPS 180-2 message "abc" and the empty message', async () => {
    expect(await hexDigest(undefined, 'abc')).toBe(SHA256_ABC);
    expect(await hexDigest(undefined)).toBe(SHA256_EMPTY);
    expect(await hexDigest(undefined, '')).toBe(SHA256_EMPTY);
  });

  it('hashes the bytes given, whether a string, an ArrayBuffer, a Uint8Array, a subarray or a DataView', async () => {
    for (const input of formsOf('abc')) expect(await hexDigest(undefined, input)).toBe(SHA256_ABC);
    // A string is hashed as UTF-8, as SigV4 requires.
    expect(await hexDigest(undefined, 'ü')).toBe(await hexDigest(undefined, Uint8Array.of(0xc3, 0xbc)));
  });

  it('several update calls give the digest of one call with everything', async () => {
    expect(await hexDigest(undefined, 'a', arrayBufferOf(utf8('b')), subarrayOf(utf8('')), dataViewOf(utf8('c')))).toBe(SHA256_ABC);
    const { key, data, mac } = RFC4231[2]!;
    expect(await hexDigest(key, ...data.match(/.{1,7}/g)!)).toBe(mac);
  });

  it('computes HMAC-SHA256 when given a secret (RFC 4231 test cases 1, 2 and 6)', async () => {
    for (const { name, key, data, mac } of RFC4231) {
      expect(await hexDigest(key, data), name).toBe(mac);
      expect(await hexDigest(subarrayOf(key), subarrayOf(utf8(data))), name).toBe(mac);
    }
  });

  it('takes the secret as a string, an ArrayBuffer, a Uint8Array, a subarray or a DataView', async () => {
    const { data, mac } = RFC4231[1]!;
    for (const secret of formsOf('Jefe')) expect(await hexDigest(secret, data)).toBe(mac);
  });

  it('digest() resolves a 32-byte Uint8Array', async () => {
    const pending = new NodeSha256().digest();
    expect(pending).toBeInstanceOf(Promise);
    const digest = await pending;
    expect(digest).toBeInstanceOf(Uint8Array);
    expect(digest.length).toBe(32);
  });

  it('reset() throws "not supported"', () => {
    expect(() => new NodeSha256().reset()).toThrow(new Error('not supported'));
  });
});
