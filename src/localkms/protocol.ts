import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KmsError } from './errors.js';
import { isSupportedOperation } from './dispatch.js';

/** The AWS JSON 1.1 wire format: `X-Amz-Target: TrentService.<Op>`, JSON bodies, `{__type, message}` errors. */

export const CONTENT_TYPE = 'application/x-amz-json-1.1';
const TARGET_PREFIX = 'TrentService.';
/** Larger than any valid KMS request (policies are ≤ 32 KB, blobs ≤ 6 KB); stops runaway bodies. */
export const MAX_BODY_BYTES = 256 * 1024;

export function operationFromTarget(target: string | string[] | undefined): string {
  const value = Array.isArray(target) ? target[0] : target;
  if (!value || !value.startsWith(TARGET_PREFIX)) {
    throw new KmsError('UnknownOperationException', `X-Amz-Target must be ${TARGET_PREFIX}<Operation>.`);
  }
  const operation = value.slice(TARGET_PREFIX.length);
  if (!isSupportedOperation(operation)) throw new KmsError('UnknownOperationException', `The local KMS does not support ${operation}.`);
  return operation;
}

export function parseJsonBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new KmsError('SerializationException', 'The request body is not valid JSON.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new KmsError('SerializationException', 'The request body must be a JSON object.');
  }
  return parsed as Record<string, unknown>;
}

export function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (tooLarge) {
        // Read and drop the rest so the client gets the answer, not a reset; a sender that
        // never stops is cut off at 16 times the limit.
        if (size > 16 * limit) req.destroy();
        return;
      }
      if (size > limit) {
        tooLarge = true;
        chunks.length = 0;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => (tooLarge ? reject(new KmsError('ValidationException', `The request body exceeds ${limit} bytes.`)) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

export function sendResult(res: ServerResponse, body: Record<string, unknown>): void {
  send(res, 200, body);
}

export function sendError(res: ServerResponse, err: KmsError): void {
  res.setHeader('x-amzn-ErrorType', err.type);
  send(res, err.status, { __type: err.type, message: err.message });
}

function send(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  if (res.headersSent) return;
  const json = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': CONTENT_TYPE,
    'content-length': Buffer.byteLength(json),
    'x-amzn-requestid': randomUUID(),
  });
  res.end(json);
}
