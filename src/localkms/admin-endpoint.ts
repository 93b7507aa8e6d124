import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { CredentialStore } from './credential-store.js';
import { FaultSettingsError, type FaultController, type FaultPatch } from './fault-controller.js';
import { readBody } from './protocol.js';

/**
 * The local KMS's operator endpoints, for loopback callers holding the admin secret
 * (`Authorization: Bearer <secret>`) only; without a configured secret they do not exist.
 *
 * - `POST /_localkms/credentials` `{ "accountId": "…" }` → `{ accessKeyId, secretAccessKey }` of that
 *   account, issued on the first call (what an operator does in IAM).
 * - `/_localkms/faults` (only when enabled, for tests): GET shows the fault settings, PUT (or PATCH)
 *   changes the fields given, DELETE turns every fault off.
 */

export const ADMIN_PREFIX = '/_localkms/';
export const FAULTS_PATH = '/_localkms/faults';
export const CREDENTIALS_PATH = '/_localkms/credentials';

export interface AdminContext {
  faults: FaultController;
  secret?: string;
  faultEndpoint: boolean;
  credentials: Pick<CredentialStore, 'issue'>;
}

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** 127.0.0.0/8, ::1 (in any spelling), and IPv4-mapped 127.x addresses. Anything unparsable is not loopback. */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (!address) return false;
  const v4mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  const ip = v4mapped ? v4mapped[1]! : address;
  const family = isIP(ip);
  if (family === 0) return false;
  return LOOPBACK.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

export async function handleAdminRequest(req: IncomingMessage, res: ServerResponse, ctx: AdminContext): Promise<void> {
  if (!isLoopbackAddress(req.socket.remoteAddress)) return reply(res, 403, { message: 'The local KMS admin endpoint answers loopback callers only.' });
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const exists = ctx.secret !== undefined && (path === CREDENTIALS_PATH || (path === FAULTS_PATH && ctx.faultEndpoint));
  if (!exists) return reply(res, 404, { message: `Unknown path ${path}.` });
  if (!bearerMatches(req.headers.authorization, ctx.secret!)) {
    return reply(res, 401, { message: 'The local KMS admin endpoints need Authorization: Bearer <admin secret> (<data dir>/localkms-admin.secret).' });
  }
  if (path === CREDENTIALS_PATH) return issueCredentials(req, res, ctx.credentials);
  const faults = ctx.faults;
  try {
    switch (req.method) {
      case 'GET':
        return reply(res, 200, faults.get());
      case 'DELETE':
        return reply(res, 200, faults.reset());
      case 'PUT':
      case 'PATCH': {
        const body = await readBody(req, 16 * 1024);
        let patch: FaultPatch;
        try {
          patch = JSON.parse(body.toString('utf8') || '{}') as FaultPatch;
        } catch {
          return reply(res, 400, { message: 'The body must be JSON.' });
        }
        if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return reply(res, 400, { message: 'The body must be a JSON object.' });
        return reply(res, 200, faults.set(patch));
      }
      default:
        res.setHeader('allow', 'GET, PUT, PATCH, DELETE');
        return reply(res, 405, { message: `${req.method} is not supported on ${FAULTS_PATH}.` });
    }
  } catch (err) {
    if (err instanceof FaultSettingsError) return reply(res, 400, { message: err.message });
    throw err;
  }
}

async function issueCredentials(req: IncomingMessage, res: ServerResponse, credentials: AdminContext['credentials']): Promise<void> {
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST');
    return reply(res, 405, { message: `${req.method} is not supported on ${CREDENTIALS_PATH}.` });
  }
  let body: { accountId?: unknown };
  try {
    body = JSON.parse((await readBody(req, 4 * 1024)).toString('utf8') || '{}') as { accountId?: unknown };
  } catch {
    return reply(res, 400, { message: 'The body must be JSON: { "accountId": "<12 digits>" }.' });
  }
  if (typeof body !== 'object' || body === null || typeof body.accountId !== 'string' || !/^\d{12}$/.test(body.accountId)) {
    return reply(res, 400, { message: 'accountId must be a 12-digit AWS account id.' });
  }
  res.setHeader('cache-control', 'no-store');
  return reply(res, 200, await credentials.issue(body.accountId));
}

/** Constant-time: the digests have equal length whatever was sent. */
function bearerMatches(header: string | undefined, secret: string): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  if (!m) return false;
  const digest = (v: string) => createHash('sha256').update(v, 'utf8').digest();
  return timingSafeEqual(digest(m[1]!), digest(secret));
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}
