import { Buffer } from 'node:buffer';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ciphertextDataIntegrityValue, decodeBase64Strict, normalizeUriPath, parseXksPath, xksPath, type XksOperation } from './index.js';

const b64 = (s: string) => Buffer.from(s, 'base64');

describe('ciphertextDataIntegrityValue', () => {
  it('reproduces the example of the specification (Appendix C)', () => {
    const cdiv = ciphertextDataIntegrityValue({
      aad: b64('cHJvamVjdD1uaWxlLGRlcGFydG1lbnQ9bWFya2V0aW5n'),
      ciphertextMetadata: b64('a2V5X3ZlcnNpb249MQ=='),
      iv: b64('HMrlRw85cAJUd5Ax'),
      ciphertext: b64('ghxkK1txeDNn3q8Y'),
      tag: b64('vBxN2ncH1oEkR8WVXpmyYQ=='),
    });
    expect(cdiv.toString('hex')).toBe('a8703f2260bd8791ec2d15ea0b23e65a0631eedcf2a13a65cc82db3f47cf5ec7');
    expect(cdiv.toString('base64')).toBe('qHA/ImC9h5HsLRXqCyPmWgYx7tzyoTplzILbP0fPXsc=');
  });

  it('treats absent AAD and metadata as empty, and changes with any flipped bit', () => {
    const parts = { iv: Buffer.alloc(12, 1), ciphertext: Buffer.from('abc'), tag: Buffer.alloc(16, 2) };
    expect(ciphertextDataIntegrityValue(parts)).toEqual(ciphertextDataIntegrityValue({ ...parts, aad: Buffer.alloc(0), ciphertextMetadata: Buffer.alloc(0) }));
    const flipped = Buffer.from(parts.ciphertext);
    flipped[1] ^= 0x01;
    expect(ciphertextDataIntegrityValue({ ...parts, ciphertext: flipped })).not.toEqual(ciphertextDataIntegrityValue(parts));
  });
});

describe('decodeBase64Strict', () => {
  it('round-trips any bytes through standard padded Base64', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(decodeBase64Strict(Buffer.from(bytes).toString('base64'))).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it('refuses text that Buffer.from would silently reinterpret', () => {
    for (const bad of ['abc', 'ab=c', 'a b=', '-_-_', 'YQ', 'YQ=', 'YWJj\n', '====']) expect(decodeBase64Strict(bad)).toBeUndefined();
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 60 }), fc.constantFrom('!', '-', '_', '*', '\u00e9'), fc.nat(), (bytes, junk, at) => {
        const text = Buffer.from(bytes).toString('base64');
        const i = at % (text.length + 1);
        expect(decodeBase64Strict(text.slice(0, i) + junk + text.slice(i))).toBeUndefined();
      }),
    );
  });
});

describe('URI paths', () => {
  const segment = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
  const keyId = fc.stringMatching(/^[A-Za-z0-9._-]{1,128}$/);
  const operation = fc.constantFrom<XksOperation>('GetKeyMetadata', 'Encrypt', 'Decrypt', 'GetHealthStatus');

  it('parses every path it builds back to the same key store, operation and key id', () => {
    fc.assert(
      fc.property(fc.array(segment, { maxLength: 4 }), operation, keyId, (prefix, op, id) => {
        const uriPath = normalizeUriPath(prefix.map((s) => `/${s}`).join(''));
        fc.pre(uriPath !== undefined);
        const route = parseXksPath(xksPath(uriPath!, op, id));
        expect(route).toEqual(op === 'GetHealthStatus' ? { uriPath, operation: op } : { uriPath, operation: op, keyId: id });
      }),
    );
  });

  it('names no operation for other paths', () => {
    for (const p of ['/', '/kms/xks/v1', '/kms/xks/v1/', '/kms/xks/v2/health', '/kms/xks/v1/keys/a/sign', '/kms/xks/v1/keys/a b/encrypt', '/kms/xks/v1/keys//encrypt', '/a.b/kms/xks/v1/health', `/kms/xks/v1/keys/${'k'.repeat(129)}/metadata`, '/kms/xks/v1/health/x']) {
      expect(parseXksPath(p), p).toBeUndefined();
    }
  });

  it('normalizes a key store prefix to its XksProxyUriPath, within 128 characters', () => {
    expect(normalizeUriPath('')).toBe('/kms/xks/v1');
    expect(normalizeUriPath('/acme')).toBe('/acme/kms/xks/v1');
    expect(normalizeUriPath('acme/kms/xks/v1/')).toBe('/acme/kms/xks/v1');
    expect(normalizeUriPath('/keystores/4a0d79d6-1d1b/kms/xks/v1')).toBe('/keystores/4a0d79d6-1d1b/kms/xks/v1');
    expect(normalizeUriPath('/a.b')).toBeUndefined();
    expect(normalizeUriPath('/a//b')).toBeUndefined();
    expect(normalizeUriPath(`/${'p'.repeat(116)}`)).toBe(`/${'p'.repeat(116)}/kms/xks/v1`);
    expect(normalizeUriPath(`/${'p'.repeat(117)}`)).toBeUndefined();
  });
});
