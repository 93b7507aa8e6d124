import dns from 'node:dns';
import net from 'node:net';
import { normalizeUriPath, URI_PATH_SUFFIX } from '../../xks-protocol/index.js';

/**
 * Which XKS proxy URLs a tenant may configure. The platform calls the URL from inside its own
 * network, so a URL is a way to aim it at internal services (SSRF): only https, and never a
 * loopback, private, link-local or cloud metadata address unless the operator admits that class.
 * Names are checked again on every connection (`guardedLookup`), so a name that resolves to an
 * internal address — at save time or later (DNS rebinding) — is refused too.
 */

export interface XksUrlPolicy {
  /** CONVAULT_XKS_ALLOW_HTTP_LOOPBACK=true: http:// (and https://) to 127.0.0.0/8, ::1 and localhost, for development and tests. */
  allowHttpLoopback: boolean;
  /** CONVAULT_XKS_ALLOW_PRIVATE_NETWORKS=true: RFC 1918, CGNAT and IPv6 unique-local addresses, for proxies in the operator's own network. */
  allowPrivateNetworks: boolean;
}

export function xksUrlPolicyFromEnv(env: NodeJS.ProcessEnv = process.env): XksUrlPolicy {
  return { allowHttpLoopback: env.CONVAULT_XKS_ALLOW_HTTP_LOOPBACK === 'true', allowPrivateNetworks: env.CONVAULT_XKS_ALLOW_PRIVATE_NETWORKS === 'true' };
}

/** Loopback may be admitted; private may be admitted; forbidden never is (link-local, metadata, unspecified, multicast, reserved). */
export type AddressClass = 'public' | 'loopback' | 'private' | 'forbidden';

const forbidden = new net.BlockList();
const privateNets = new net.BlockList();
const loopback = new net.BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
for (const [a, p] of [['10.0.0.0', 8], ['172.16.0.0', 12], ['192.168.0.0', 16], ['100.64.0.0', 10], ['198.18.0.0', 15]] as const) privateNets.addSubnet(a, p, 'ipv4');
privateNets.addSubnet('fc00::', 7, 'ipv6');
// 169.254.169.254 and fd00:ec2::254 (instance metadata) lie in link-local / unique-local space; the
// metadata address is listed on its own so that admitting private networks never admits it.
for (const [a, p] of [['0.0.0.0', 8], ['169.254.0.0', 16], ['192.0.0.0', 24], ['192.0.2.0', 24], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4]] as const) {
  forbidden.addSubnet(a, p, 'ipv4');
}
for (const [a, p] of [['::', 128], ['fe80::', 10], ['ff00::', 8], ['fd00:ec2::254', 128], ['2001:db8::', 32], ['64:ff9b::', 96], ['2002::', 16], ['100::', 64]] as const) {
  forbidden.addSubnet(a, p, 'ipv6');
}

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;
const MAPPED_V4_HEX = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i;

/** The class of a literal IPv4 or IPv6 address (IPv4-mapped IPv6 is judged as the IPv4 it carries). */
export function classifyAddress(address: string): AddressClass {
  let ip = address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, '');
  const mapped = MAPPED_V4.exec(ip);
  const mappedHex = MAPPED_V4_HEX.exec(ip);
  if (mapped) ip = mapped[1]!;
  else if (mappedHex) {
    const hi = parseInt(mappedHex[1]!, 16);
    const lo = parseInt(mappedHex[2]!, 16);
    ip = `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  const family = net.isIP(ip);
  if (family === 0) return 'forbidden';
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (forbidden.check(ip, type)) return 'forbidden';
  if (loopback.check(ip, type)) return 'loopback';
  if (privateNets.check(ip, type)) return 'private';
  return 'public';
}

function admitted(cls: AddressClass, policy: XksUrlPolicy): boolean {
  return cls === 'public' || (cls === 'loopback' && policy.allowHttpLoopback) || (cls === 'private' && policy.allowPrivateNetworks);
}

const REFUSAL: Record<Exclude<AddressClass, 'public'>, string> = {
  loopback: 'a loopback address (admitted only with CONVAULT_XKS_ALLOW_HTTP_LOOPBACK=true)',
  private: 'a private network address (admitted only with CONVAULT_XKS_ALLOW_PRIVATE_NETWORKS=true)',
  forbidden: 'a link-local, metadata, unspecified, multicast or reserved address, which is never admitted',
};

export interface ValidXksUrl {
  /** The URL as it will be called: origin + normalized `[/<prefix>]/kms/xks/v1`. */
  url: string;
  host: string;
  uriPath: string;
}

export type XksUrlResult = { ok: true; value: ValidXksUrl } | { ok: false; message: string };

const FORM = 'https://host[:port][/<path-prefix>]/kms/xks/v1';
const LOCAL_NAMES = /^(localhost|localhost\.localdomain)$|\.localhost$/i;
// Names that resolve to internal services on common clouds; refused without asking DNS.
const INTERNAL_NAMES = /^(metadata|metadata\.google\.internal|instance-data(\.ec2\.internal)?)\.?$|\.internal\.?$/i;

/** Syntax and address checks of a proxy URL; names are checked further at connection time. */
export function validateXksProxyUrl(input: unknown, policy: XksUrlPolicy): XksUrlResult {
  const fail = (problem: string): XksUrlResult => ({ ok: false, message: `${problem} Use the form ${FORM}.` });
  if (typeof input !== 'string' || input.trim() === '') return fail('The XKS proxy URL is required.');
  let u: URL;
  try {
    u = new URL(input.trim());
  } catch {
    return fail('The XKS proxy URL is not a URL.');
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return fail(`The scheme ${u.protocol.replace(/:$/, '')} is not https.`);
  if (u.username || u.password) return fail('The XKS proxy URL must not carry user information; use apiId and apiKey.');
  if (u.search || u.hash) return fail('The XKS proxy URL must not have a query or fragment.');
  const pathname = u.pathname.replace(/\/+$/, '');
  const uriPath = pathname.endsWith(URI_PATH_SUFFIX) ? normalizeUriPath(pathname) : undefined;
  if (!uriPath) return fail(`The path ${u.pathname} is not [/<path-prefix>]/kms/xks/v1 (at most 128 characters of A-Z a-z 0-9 / - _).`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  let cls: AddressClass;
  if (net.isIP(host)) cls = classifyAddress(host);
  else if (LOCAL_NAMES.test(host)) cls = 'loopback';
  else if (INTERNAL_NAMES.test(host)) cls = 'forbidden';
  else if (/^[a-z0-9.-]+$/i.test(host) && host.includes('.') && !/^[\d.]+$/.test(host)) cls = 'public';
  else return fail(`The host ${host} is not a fully qualified domain name or an IP address.`);
  if (cls !== 'public' && !admitted(cls, policy)) return fail(`The host ${host} is ${REFUSAL[cls]}.`);
  if (u.protocol === 'http:' && !(cls === 'loopback' && policy.allowHttpLoopback)) {
    return fail('The XKS proxy must be reached over https (http only on loopback with CONVAULT_XKS_ALLOW_HTTP_LOOPBACK=true).');
  }
  return { ok: true, value: { url: `${u.origin}${uriPath}`, host, uriPath } };
}

/**
 * A `lookup` for http(s) requests that resolves as usual and refuses every address the policy does
 * not admit: the check happens on the address actually connected to.
 */
export function guardedLookup(policy: XksUrlPolicy): net.LookupFunction {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err);
      const list = addresses as dns.LookupAddress[];
      const refused = list.find((a) => !admitted(classifyAddress(a.address), policy));
      if (refused || list.length === 0) {
        const e = Object.assign(new Error(`XKS proxy host ${hostname} resolves to ${refused?.address ?? 'nothing'}, ${refused ? REFUSAL[classifyAddress(refused.address) as Exclude<AddressClass, 'public'>] : 'no address'}`), {
          code: 'ERR_XKS_ADDRESS_REFUSED',
        });
        return callback(e);
      }
      if (options.all) return callback(null, list);
      return callback(null, list[0]!.address, list[0]!.family);
    });
  }) as net.LookupFunction;
}
