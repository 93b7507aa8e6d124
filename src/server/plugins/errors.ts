import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../services/errors.js';

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

/**
 * Errors Fastify's router raises before any route or hook runs (a URL that does not decode, a path
 * parameter over the length limit): the same error body as everything else.
 */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const appError = classifyError(err);
  void reply.header('x-request-id', request.id).status(appError.status).send(toErrorBody(appError, request.id));
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const appError = classifyError(err);
    if (appError.status >= 500) request.log.error({ err }, 'request failed');
    if (appError.status === 429 && appError.details?.retryAfterSeconds !== undefined) {
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
