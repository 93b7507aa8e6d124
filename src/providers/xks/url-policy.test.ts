import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isKeyProviderError } from '../key-provider.js';
import { classifyXksFailure } from './failures.js';
import { classifyAddress, guardedLookup, validateXksProxyUrl, type XksUrlPolicy } from './url-policy.js';
import { decodeWrappedKey, encodeWrappedKey } from './wrapped-key.js';

const STRICT: XksUrlPolicy = { allowHttpLoopback: false, allowPrivateNetworks: false };
const ALL_POLICIES: XksUrlPolicy[] = [STRICT, { allowHttpLoopback: true, allowPrivateNetworks: false }, { allowHttpLoopback: false, allowPrivateNetworks: true }, { allowHttpLoopback: true, allowPrivateNetworks: true }];

const octet = fc.integer({ min: 0, max: 255 });
const v4 = (a: fc.Arbitrary<number>, b: fc.Arbitrary<number> = octet) => fc.tuple(a, b, octet, octet).map((p) => p.join('.'));
const privateV4 = fc.oneof(v4(fc.constant(10)), v4(fc.constant(172), fc.integer({ min: 16, max: 31 })), v4(fc.constant(192), fc.constant(168)), v4(fc.constant(100), fc.integer({ min: 64, max: 127 })));
const neverV4 = fc.oneof(v4(fc.constant(169), fc.constant(254)), v4(fc.constant(0)), v4(fc.integer({ min: 224, max: 255 })));
const loopbackV4 = v4(fc.constant(127));
const hex = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));
const linkLocalV6 = fc.tuple(fc.integer({ min: 0xfe80, max: 0xfebf }), hex, hex).map(([a, b, c]) => `[${a.toString(16)}::${b}:${c}]`);
const uniqueLocalV6 = fc.tuple(fc.integer({ min: 0xfc00, max: 0xfdff }), hex, hex).map(([a, b, c]) => `[${a.toString(16)}:${b}::${c}]`);
const label = fc.stringMatching(/^[a-z][a-z0-9-]{0,10}[a-z0-9]$/);
const publicName = fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('com', 'net', 'bank', 'io')).map(([ls, tld]) => [...ls, tld].join('.'));
const prefix = fc.array(fc.stringMatching(/^[A-Za-z0-9_-]{1,8}$/), { maxLength: 3 }).map((segs) => segs.map((s) => `/${s}`).join(''));
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined });
const url = (scheme: string, host: string, p: number | undefined, pre: string) => `${scheme}://${host}${p ? `:${p}` : ''}${pre}/kms/xks/v1`;
const refused = (input: string, policy: XksUrlPolicy) => !validateXksProxyUrl(input, policy).ok;

describe('XKS proxy URL validation (properties)', () => {
  it('never admits link-local, metadata, unspecified or multicast addresses, under any policy, as IPv4 or IPv4-mapped IPv6', () => {
    fc.assert(
      fc.property(neverV4, fc.constantFrom('http', 'https'), port, prefix, fc.constantFrom(...ALL_POLICIES), (ip, scheme, p, pre, policy) => {
        expect(refused(url(scheme, ip, p, pre), policy)).toBe(true);
        expect(refused(url(scheme, `[::ffff:${ip}]`, p, pre), policy)).toBe(true);
      }),
    );
    fc.assert(fc.property(linkLocalV6, fc.constantFrom(...ALL_POLICIES), (ip, policy) => {
      expect(refused(`https://${ip}/kms/xks/v1`, policy)).toBe(true);
    }));
    for (const policy of ALL_POLICIES) {
      expect(refused('https://[fd00:ec2::254]/kms/xks/v1', policy)).toBe(true);
      expect(refused('https://metadata.google.internal/kms/xks/v1', policy)).toBe(true);
    }
  });

  it('refuses private addresses unless the operator admits private networks, and then only over https', () => {
    fc.assert(
      fc.property(fc.oneof(privateV4, uniqueLocalV6), port, prefix, (ip, p, pre) => {
        expect(refused(url('https', ip, p, pre), STRICT)).toBe(true);
        expect(refused(url('https', ip, p, pre), { allowHttpLoopback: true, allowPrivateNetworks: false })).toBe(true);
        expect(refused(url('https', ip, p, pre), { allowHttpLoopback: false, allowPrivateNetworks: true })).toBe(false);
        expect(refused(url('http', ip, p, pre), { allowHttpLoopback: true, allowPrivateNetworks: true })).toBe(true);
      }),
    );
  });

  it('admits loopback (http or https) only with CONVAULT_XKS_ALLOW_HTTP_LOOPBACK', () => {
    fc.assert(
      fc.property(fc.oneof(loopbackV4, fc.constant('localhost'), fc.constant('[::1]')), fc.constantFrom('http', 'https'), port, prefix, (host, scheme, p, pre) => {
        expect(refused(url(scheme, host, p, pre), STRICT)).toBe(true);
        expect(refused(url(scheme, host, p, pre), { allowHttpLoopback: false, allowPrivateNetworks: true })).toBe(true);
        expect(refused(url(scheme, host, p, pre), { allowHttpLoopback: true, allowPrivateNetworks: false })).toBe(false);
      }),
    );
  });

  it('admits https to a public name with any valid prefix, normalized; never http to it', () => {
    fc.assert(
      fc.property(publicName, port, prefix, fc.constantFrom(...ALL_POLICIES), (host, p, pre, policy) => {
        const ok = validateXksProxyUrl(url('https', host, p, pre), policy);
        expect(ok.ok).toBe(true);
        if (ok.ok) expect(ok.value.url).toBe(`https://${host}${p && p !== 443 ? `:${p}` : ''}${pre}/kms/xks/v1`);
        expect(refused(url('http', host, p, pre), policy)).toBe(true);
      }),
    );
  });

  it('answers every string with a result, never an exception; a refusal names the form', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.webUrl()), fc.constantFrom(...ALL_POLICIES), (input, policy) => {
        const r = validateXksProxyUrl(input, policy);
        if (!r.ok) expect(r.message).toContain('/kms/xks/v1');
      }),
    );
  });

  it('refuses user information, queries, and names that are not fully qualified', () => {
    for (const input of ['https://xks.example.com/acme', 'https://u:p@xks.example.com/kms/xks/v1', 'https://xks.example.com/kms/xks/v1?x=1', 'https://xks/kms/xks/v1', 'https://xks.example.com/kms/xks/v2', 'ftp://xks.example.com/kms/xks/v1', 42]) {
      expect(refused(input as string, { allowHttpLoopback: true, allowPrivateNetworks: true })).toBe(true);
    }
    // Decimal and short IPv4 forms are parsed by URL into dotted quads before classification.
    expect(refused('https://2130706433/kms/xks/v1', STRICT)).toBe(true);
    expect(refused('https://0x7f.1/kms/xks/v1', STRICT)).toBe(true);
    expect(classifyAddress('not an address')).toBe('forbidden');
  });
});

describe('name resolution at connection time', () => {
  const lookup = (policy: XksUrlPolicy, all: boolean) =>
    new Promise<{ err: NodeJS.ErrnoException | null; address: unknown }>((resolve) =>
      guardedLookup(policy)('localhost', { all }, (err: NodeJS.ErrnoException | null, address: unknown) => resolve({ err, address })),
    );

  it('refuses a name that resolves to an address the policy does not admit, as Misconfigured', async () => {
    const { err } = await lookup(STRICT, false);
    expect(err?.code).toBe('ERR_XKS_ADDRESS_REFUSED');
    const failure = classifyXksFailure(err, 'Encrypt');
    expect(failure.kind).toBe('Misconfigured');
    expect(failure.providerError).toBe('ERR_XKS_ADDRESS_REFUSED');
  });

  it('passes the addresses on when the policy admits them', async () => {
    const one = await lookup({ allowHttpLoopback: true, allowPrivateNetworks: false }, false);
    expect(one.err).toBeNull();
    expect(classifyAddress(one.address as string)).toBe('loopback');
    const all = await lookup({ allowHttpLoopback: true, allowPrivateNetworks: false }, true);
    expect(Array.isArray(all.address)).toBe(true);
  });
});

describe('XKS wrapped data key format (properties)', () => {
  const ciphertextArb = fc.record({
    ciphertext: fc.uint8Array({ minLength: 1, maxLength: 64 }).map((b) => Buffer.from(b)),
    initializationVector: fc.constantFrom(12, 16).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })).map((b) => Buffer.from(b)),
    authenticationTag: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => Buffer.from(b)),
    ciphertextMetadata: fc.option(fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => Buffer.from(b)), { nil: undefined }),
  });

  it('decodes what it encodes', () => {
    fc.assert(
      fc.property(ciphertextArb, (c) => {
        const { ciphertextMetadata, ...rest } = c;
        const input = ciphertextMetadata ? c : rest;
        expect(decodeWrappedKey(encodeWrappedKey(input))).toEqual(input);
      }),
    );
  });

  it('refuses arbitrary bytes with InvalidCiphertext or decodes them, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          decodeWrappedKey(Buffer.from(bytes));
        } catch (err) {
          expect(isKeyProviderError(err, 'InvalidCiphertext')).toBe(true);
        }
      }),
    );
  });
});
