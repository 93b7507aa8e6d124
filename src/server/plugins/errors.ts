import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../services/errors.js';
import { StoreUnavailableError } from '../../store/store-faults.js';

/** The one error body every endpoint answers with. */
export interface ErrorBody {
  message: string;
  code: string;
  status: number;
  errorType?: string;
  contextId: string;
  details?: Record<string, unknown>;
}

export function toErrorBody(err: AppError, contextId: string): ErrorBody {
  return {
    message: err.message,
    code: err.code,
    status: err.status,
    ...(err.errorType ? { errorType: err.errorType } : {}),
    contextId,
    ...(err.details ? { details: err.details } : {}),
  };
}

/** Maps whatever was thrown to an AppError; unknown errors become a 500 that reveals nothing. */
export function classifyError(err: unknown): AppError {
  if (err instanceof AppError) return err;
  if (err instanceof StoreUnavailableError) {
    return new AppError(503, 'service.unavailable', err.message, 'StoreUnavailable', { reason: err.reason, retryAfterSeconds: err.retryAfterSeconds });
  }
  const e = err as FastifyError & { validation?: Array<{ instancePath?: string; message?: string; params?: Record<string, unknown> }> };
  if (e.validation) {
    const first = e.validation[0];
    const missing = first?.params?.missingProperty as string | undefined;
    const field = [(e.validationContext ?? 'body'), ...(first?.instancePath ?? '').split('/').filter(Boolean), ...(missing ? [missing] : [])].join('.');
    return new AppError(400, 'bad.request', `Invalid request: ${field} ${first?.message ?? 'is invalid'}.`, undefined, {
      field,
      errors: e.validation.map((v) => ({ path: v.instancePath, message: v.message })),
    });
  }
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new AppError(413, 'request.too.large', 'The request body exceeds the size limit.', 'MaximumDataSizeExceeded');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError(415, 'unsupported.media.type', 'Send the body as application/json.');
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new AppError(e.statusCode, 'bad.request', e.message);
  }
  return new AppError(500, 'internal.server.error', 'An internal error occurred; quote the contextId when reporting it.');
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const appError = classifyError(err);
    if (err instanceof StoreUnavailableError) {
      // Expected during an outage and logged once per request, without a stack: the cause is the database.
      request.log.warn({ reason: err.reason, driverCode: err.driverCode }, 'request failed: database unavailable');
    } else if (appError.status >= 500) request.log.error({ err }, 'request failed');
    if ((appError.status === 429 || appError.status === 503) && appError.details?.retryAfterSeconds !== undefined) {
      void reply.header('retry-after', String(appError.details.retryAfterSeconds));
    } else if (appError.status === 503 && !reply.hasHeader('retry-after')) {
      // 503 here means a dependency (KMS, the database) is unreachable or throttling: worth a retry soon.
      void reply.header('retry-after', String(appError.details?.retryAfterSeconds ?? 1));
    }
    return reply.status(appError.status).send(toErrorBody(appError, request.id));
  });
  app.setNotFoundHandler((request, reply) => {
    const err = new AppError(404, 'not.found', `No route ${request.method} ${request.url.split('?')[0]}.`);
    return reply.status(404).send(toErrorBody(err, request.id));
  });
}

/** Fastify's own errors before a route runs (bad URL encoding, …), in the one error body. */
export function sendFrameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  const message = error.code === 'FST_ERR_BAD_URL' ? 'The URL is not valid (it does not decode).' : `The request is not valid (${error.code ?? 'bad request'}).`;
  // Sent before any hook runs, so the request id header is set here.
  void reply.header('x-request-id', request.id).status(status).send(toErrorBody(new AppError(status, 'bad.request', message), request.id));
}

const CLIENT_ERRORS: Record<string, { status: number; reason: string; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, reason: 'Request Header Fields Too Large', message: 'The request headers (or URL) are too large.' },
  HPE_URI_TOO_LONG: { status: 414, reason: 'URI Too Long', message: 'The URL is too long.' },
};

/** Node's HTTP parser refused the request (no Fastify request exists): answer on the socket in the one shape. */
export function answerClientError(err: Error & { code?: string }, socket: Socket): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const known = CLIENT_ERRORS[err.code ?? ''] ?? { status: 400, reason: 'Bad Request', message: 'The request is not valid HTTP.' };
  const contextId = randomUUID();
  const body = JSON.stringify(toErrorBody(new AppError(known.status, 'bad.request', known.message), contextId));
  socket.end(
    `HTTP/1.1 ${known.status} ${known.reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `x-request-id: ${contextId}\r\nconnection: close\r\n\r\n${body}`,
  );
}
