/**
 * The one error type services throw. The HTTP layer turns it into the error body
 * `{ message, code, status, errorType?, contextId, details? }`; the CLI prints its message.
 */
export class AppError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly errorType?: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>, errorType?: string) =>
  new AppError(400, 'bad.request', message, errorType, details);
export const unauthorized = (message = 'A valid bearer token is required (Authorization: Bearer <token>).') =>
  new AppError(401, 'authentication.required', message);
export const forbidden = (permission: string) =>
  new AppError(403, 'missing.permissions', `This token lacks the permission ${permission}.`, undefined, {
    missingPermissions: [permission],
  });
export const notFound = (what: string) => new AppError(404, 'not.found', `${what} was not found.`);
export const conflict = (message: string, details?: Record<string, unknown>) =>
  new AppError(409, 'conflict', message, undefined, details);
export const tooLarge = (message: string, errorType = 'MaximumDataSizeExceeded') =>
  new AppError(413, 'request.too.large', message, errorType);
