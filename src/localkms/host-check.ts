import { isLoopbackAddress } from './admin-endpoint.js';

/**
 * Which `Host` header values the local KMS answers: loopback names and addresses (any port), plus the
 * names it was configured with. Wildcard listen addresses (0.0.0.0, ::) name no host and add nothing.
 */
export function hostMatcher(configured: string[]): (hostHeader: string | undefined) => boolean {
  const extra = new Set(configured.map((h) => h.toLowerCase().replace(/^\[|\]$/g, '')).filter((h) => h !== '0.0.0.0' && h !== '::' && h !== ''));
  return (hostHeader) => {
    if (!hostHeader) return false;
    const name = hostName(hostHeader.trim().toLowerCase());
    if (name === undefined) return false;
    return name === 'localhost' || isLoopbackAddress(name) || extra.has(name);
  };
}

/** The name part of `name[:port]` or `[v6]:port`; undefined when malformed. */
function hostName(value: string): string | undefined {
  const v6 = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(value);
  if (v6) return v6[1];
  const m = /^([a-z0-9.-]+)(?::\d{1,5})?$/.exec(value);
  return m?.[1];
}
