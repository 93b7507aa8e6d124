import { expect } from 'vitest';

/** A 503 in the one error shape, with Retry-After, saying the store is unavailable (for `reason`, when given). */
export function expectStoreUnavailable(res: { status: number; body: any; retryAfter: string | null }, reason?: string): void {
  expect(res.status).toBe(503);
  expect(res.retryAfter).toMatch(/^[1-9]\d*$/);
  expect(res.body).toEqual({
    message: expect.any(String),
    code: 'service.unavailable',
    status: 503,
    errorType: 'StoreUnavailable',
    contextId: expect.any(String),
    details: { reason: reason ?? expect.any(String), retryAfterSeconds: Number(res.retryAfter) },
  });
}
