import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../../src/crypto/sha256-hash.js';
import { CLI } from './process.js';

/**
 * Raw XKS requests signed (or not) exactly as a test wants: for the malformed and mis-signed
 * requests a well-behaved client never sends.
 */

export interface RawXksRequest {
  /** Base URL of the proxy, e.g. http://127.0.0.1:1234 */
  url: string;
  path: string;
  method?: string;
  /** A JSON value, or raw text sent as is. */
  body?: unknown;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  service?: string;
  region?: string;
  signingDate?: Date;
  /** Replaces the body after signing. */
  tamperBody?: string;
  /** Leaves host out of the signed headers. */
  unsignedHost?: boolean;
  headers?: Record<string, string>;
}

export interface RawXksResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  json: any;
  text: string;
}

export async function rawXks(req: RawXksRequest): Promise<RawXksResponse> {
  const base = new URL(req.url);
  const method = req.method ?? 'POST';
  const body = req.body === undefined ? '' : typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
  let headers: Record<string, string> = { host: base.host, 'content-type': 'application/json', ...req.headers };
  if (req.credentials) {
    const signer = new SignatureV4({
      credentials: req.credentials,
      region: req.region ?? 'us-east-1',
      service: req.service ?? 'kms-xks-proxy',
      sha256: NodeSha256,
      applyChecksum: false,
    });
    const signed = await signer.sign(
      { method, protocol: base.protocol, hostname: base.hostname, port: Number(base.port), path: req.path, query: {}, headers, body },
      {
        ...(req.signingDate ? { signingDate: req.signingDate } : {}),
        ...(req.unsignedHost ? { unsignableHeaders: new Set(['host']) } : {}),
      },
    );
    headers = signed.headers as Record<string, string>;
  }
  const sent = req.tamperBody ?? body;
  return new Promise((resolve, reject) => {
    const r = http.request(
      { method, hostname: base.hostname, port: base.port, path: req.path, headers: { ...headers, 'content-length': String(Buffer.byteLength(sent)) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, json, text });
        });
      },
    );
    r.on('error', reject);
    r.end(sent);
  });
}

export const PRINCIPAL = 'arn:aws:iam::111122223333:user/xks-test';
export const KMS_KEY_ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

export function requestMetadata(operation: string) {
  return { awsPrincipalArn: PRINCIPAL, kmsKeyArn: KMS_KEY_ARN, kmsOperation: operation, kmsRequestId: `req-${operation}-${Date.now()}` };
}

export interface XksServeProcess {
  url: string;
  proc: ChildProcess;
  output(): string;
}

/** Starts `convault xks serve --port 0 …` as a real process and waits for the URL it prints. */
export async function spawnXksServe(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<XksServeProcess> {
  const proc = spawn(process.execPath, [CLI, 'xks', 'serve', '--port', '0', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`xks serve did not start in time: ${out}`));
    }, timeoutMs);
    proc.stdout!.on('data', () => {
      const m = /listening at (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`xks serve exited with ${code}: ${out}`));
    });
  });
  return { url, proc, output: () => out };
}
