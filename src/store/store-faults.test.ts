import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyStoreError, describeDriverError, isRetryableConflict, StoreUnavailableError, toStoreError } from './store-faults.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('classifyStoreError', () => {
  it.each([
    ['57P01', 'connection-lost'],
    ['57P02', 'connection-lost'],
    ['08006', 'connection-lost'],
    ['08003', 'connection-lost'],
    ['08001', 'unreachable'],
    ['57P03', 'unreachable'],
    ['53300', 'unreachable'],
    ['53100', 'disk-full'],
    ['40001', 'conflict'],
    ['40P01', 'conflict'],
    ['ECONNREFUSED', 'unreachable'],
    ['ETIMEDOUT', 'unreachable'],
    ['ECONNRESET', 'connection-lost'],
    ['EPIPE', 'connection-lost'],
    ['SQLITE_BUSY', 'busy'],
    ['SQLITE_BUSY_SNAPSHOT', 'busy'],
    ['SQLITE_LOCKED', 'busy'],
    ['SQLITE_FULL', 'disk-full'],
    ['SQLITE_IOERR_WRITE', 'io-error'],
    ['SQLITE_READONLY', 'io-error'],
  ])('%s → %s', (code, reason) => {
    expect(classifyStoreError(withCode(code))).toBe(reason);
  });

  it('reads node-postgres faults that carry no code from their message', () => {
    expect(classifyStoreError(new Error('Connection terminated unexpectedly'))).toBe('connection-lost');
    expect(classifyStoreError(new Error('Client has encountered a connection error and is not queryable'))).toBe('connection-lost');
    expect(classifyStoreError(new Error('timeout exceeded when trying to connect'))).toBe('unreachable');
  });

  it('leaves what the caller caused alone: constraints, syntax, application errors', () => {
    for (const code of ['23505', '23503', '42P01', '42601', 'SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_ERROR', 'ERR_SOMETHING']) {
      expect(classifyStoreError(withCode(code))).toBeUndefined();
      expect(toStoreError(withCode(code))).toBeInstanceOf(Error);
      expect(toStoreError(withCode(code))).not.toBeInstanceOf(StoreUnavailableError);
    }
    expect(classifyStoreError(new Error('something else'))).toBeUndefined();
    expect(classifyStoreError(undefined)).toBeUndefined();
  });

  it('turns a fault into StoreUnavailableError with its reason, code and a Retry-After', () => {
    const err = toStoreError(withCode('57P01', 'terminating connection due to administrator command'));
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect(err).toMatchObject({ reason: 'connection-lost', driverCode: '57P01', retryAfterSeconds: 1 });
    expect(isRetryableConflict(withCode('40P01'))).toBe(true);
    expect(isRetryableConflict(withCode('57P01'))).toBe(false);
  });
});

describe('describeDriverError', () => {
  it('never repeats the password of a URL in the message', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z][a-z0-9_]{0,10}$/),
        fc.stringMatching(/^[A-Za-z0-9!$%^&*()_+=-]{1,24}$/),
        fc.string({ maxLength: 30 }),
        (user, password, tail) => {
          const message = `could not connect to postgres://${user}:${password}@db.example:5432/convault ${tail}`;
          const described = describeDriverError(withCode('ECONNREFUSED', message));
          expect(described.message).not.toContain(`:${password}@`);
          expect(described.message).toContain(`postgres://${user}:***@db.example`);
          expect(described.code).toBe('ECONNREFUSED');
        },
      ),
    );
  });

  it('gives code and message only, never the client pg attaches to the error', () => {
    const err = Object.assign(withCode('57P01', 'terminating connection'), { client: { password: 'secret' } });
    expect(describeDriverError(err)).toEqual({ code: '57P01', message: 'terminating connection' });
  });
});
