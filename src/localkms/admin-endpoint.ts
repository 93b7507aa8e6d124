import type { IncomingMessage, ServerResponse } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { FaultSettingsError, type FaultController, type FaultPatch } from './fault-controller.js';
import { readBody } from './protocol.js';

/**
 * `/_localkms/faults`: GET shows the fault settings, PUT (or PATCH) changes the fields given,
 * DELETE turns every fault off. Answered only to loopback callers, whatever address the server
 * listens on, so a local KMS reachable from elsewhere cannot be knocked over from elsewhere.
 */

export const ADMIN_PREFIX = '/_localkms/';
export const FAULTS_PATH = '/_localkms/faults';

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

export async function handleAdminRequest(req: IncomingMessage, res: ServerResponse, faults: FaultController): Promise<void> {
  if (!isLoopbackAddress(req.socket.remoteAddress)) return reply(res, 403, { message: 'The local KMS admin endpoint answers loopback callers only.' });
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (path !== FAULTS_PATH) return reply(res, 404, { message: `Unknown admin path ${path}; use ${FAULTS_PATH}.` });
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

function reply(res: ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}
