import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { parseXksPath } from '../xks-protocol/index.js';
import { XksProxyError } from './errors.js';
import type { XksOperations } from './operations.js';
import { metadataForLog } from './request-body.js';
import { verifyXksSignature, type SecretLookup } from './request-auth.js';

/**
 * The proxy's HTTP(S) front: routes the four URIs, answers GET on them with 405, reads the body
 * (needed whole for the signature), verifies SigV4 for the key store named by the path, and turns
 * every failure into the specification's `{ errorName, errorMessage }`. One log line per request
 * with its requestMetadata identifiers, the outcome and the time taken; never a plaintext or secret.
 */

/** Largest body: 4300 bytes of ciphertext, 8192 of AAD and 2048-character ARNs fit with room to spare. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface XksRequestLog {
  method: string;
  path: string;
  operation?: string;
  keyId?: string;
  status: number;
  errorName?: string;
  ms: number;
  kmsRequestId?: string;
  kmsOperation?: string;
  awsPrincipalArn?: string;
  kmsKeyArn?: string;
}

export interface XksServerOptions {
  operations: XksOperations;
  secretFor: SecretLookup;
  host: string;
  port: number;
  /** PEM certificate chain and key: HTTPS. Absent: plain HTTP (the CLI allows that on loopback only). */
  tls?: XksTlsOptions;
  log?: (entry: XksRequestLog) => void;
}

export interface XksTlsOptions {
  cert: Buffer;
  key: Buffer;
  /** Mutual TLS: clients must present a certificate chained to this CA bundle… */
  clientCa?: Buffer;
  /** …with exactly this subject common name (AWS KMS presents cks.kms.<region>.amazonaws.com). */
  clientCommonName?: string;
}

export interface XksServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

class BodyTooLarge extends Error {}

export async function startXksServer(opts: XksServerOptions): Promise<XksServer> {
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    void handle(req, res);
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const started = performance.now();
    const method = req.method ?? 'GET';
    const pathname = new URL(req.url ?? '/', 'http://proxy').pathname;
    const route = parseXksPath(pathname);
    let body: Buffer | undefined;
    const send = (status: number, payload: unknown, extra: Partial<XksRequestLog> = {}, headers: Record<string, string> = {}) => {
      const text = JSON.stringify(payload);
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
      res.end(text);
      opts.log?.({
        method,
        path: pathname,
        operation: route?.operation,
        keyId: route?.keyId,
        status,
        ms: Math.round((performance.now() - started) * 10) / 10,
        ...metadataForLog(body && safeJson(body)),
        ...extra,
      });
    };
    try {
      // A load balancer's health check (the specification asks proxies to offer one): shallow, unauthenticated.
      if (pathname === '/healthz' && (method === 'GET' || method === 'HEAD')) return send(200, { status: 'ok' });
      if (!route) throw new XksProxyError('InvalidUriPathException', `${pathname.slice(0, 300)} is not a URI of the XKS proxy API ([/<path-prefix>]/kms/xks/v1/health or .../keys/<externalKeyId>/metadata|encrypt|decrypt)`);
      if (method !== 'POST') {
        req.resume();
        return send(405, { errorMessage: `${method} is not allowed: every XKS proxy API request is a POST` }, {}, { allow: 'POST' });
      }
      body = await readBody(req);
      await verifyXksSignature({ method, pathname, headers: req.headers, body }, route.uriPath, opts.secretFor);
      const ops = opts.operations;
      const keyId = route.keyId!;
      const result =
        route.operation === 'GetHealthStatus'
          ? await ops.getHealthStatus()
          : route.operation === 'GetKeyMetadata'
            ? await ops.getKeyMetadata(keyId, body)
            : route.operation === 'Encrypt'
              ? await ops.encrypt(keyId, body)
              : await ops.decrypt(keyId, body);
      send(200, result);
    } catch (err) {
      const error =
        err instanceof XksProxyError
          ? err
          : err instanceof BodyTooLarge
            ? new XksProxyError('UnsupportedOperationException', `The request body exceeds the ${MAX_BODY_BYTES} bytes this proxy accepts`)
            : new XksProxyError('InternalException', 'The key manager failed; see the proxy log');
      if (!(err instanceof XksProxyError) && !(err instanceof BodyTooLarge)) process.emitWarning(`XKS proxy: ${(err as Error).message}`);
      if (err instanceof BodyTooLarge) res.setHeader('connection', 'close');
      send(error.status, error.body(), { errorName: error.errorName });
    }
  }

  const server = opts.tls ? createHttpsServer(opts.tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${hostForUrl}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function createHttpsServer(tls: XksTlsOptions, handler: http.RequestListener): https.Server {
  const mutual = tls.clientCa !== undefined;
  const server = https.createServer(
    { cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...(mutual ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}) },
    handler,
  );
  if (mutual && tls.clientCommonName !== undefined) {
    // Node checks the chain during the handshake; the subject is checked as soon as it completes,
    // before a single request is read, and the connection is dropped on a mismatch.
    server.on('secureConnection', (socket) => {
      const cn = socket.getPeerCertificate()?.subject?.CN;
      if ((Array.isArray(cn) ? cn[0] : cn) !== tls.clientCommonName) socket.destroy();
    });
  }
  return server;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        req.removeAllListeners('data');
        req.resume();
        reject(new BodyTooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

function safeJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
}
