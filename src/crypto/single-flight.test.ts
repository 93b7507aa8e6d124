import { describe, expect, it } from 'vitest';
import { createSingleFlight } from './single-flight.js';

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('single flight', () => {
  it('runs fn once for N concurrent callers and gives all of them the result', async () => {
    const flight = createSingleFlight<string>();
    const d = deferred<string>();
    let calls = 0;
    const fn = () => {
      calls++;
      return d.promise;
    };
    const all = Array.from({ length: 50 }, () => flight.run('org-1', fn));
    expect(calls).toBe(1);
    expect(flight.size).toBe(1);
    d.resolve('data-key');
    expect(await Promise.all(all)).toEqual(Array(50).fill('data-key'));
    expect(flight.size).toBe(0);
  });

  it('keeps different keys apart', async () => {
    const flight = createSingleFlight<string>();
    let calls = 0;
    const [a, b] = await Promise.all([
      flight.run('org-1', async () => `${++calls}:a`),
      flight.run('org-2', async () => `${++calls}:b`),
    ]);
    expect(calls).toBe(2);
    expect([a, b].sort()).toEqual(['1:a', '2:b']);
  });

  it('runs again once the previous call settled', async () => {
    const flight = createSingleFlight<number>();
    let calls = 0;
    const fn = async () => ++calls;
    expect(await flight.run('k', fn)).toBe(1);
    expect(await flight.run('k', fn)).toBe(2);
  });

  it('propagates a rejection to every caller and frees the key', async () => {
    const flight = createSingleFlight<string>();
    const d = deferred<string>();
    let calls = 0;
    const all = Array.from({ length: 10 }, () =>
      flight.run('org-1', () => {
        calls++;
        return d.promise;
      }),
    );
    const boom = new Error('KMS unavailable');
    d.reject(boom);
    const results = await Promise.allSettled(all);
    expect(calls).toBe(1);
    for (const r of results) expect(r).toEqual({ status: 'rejected', reason: boom });
    expect(flight.size).toBe(0);
    expect(await flight.run('org-1', async () => 'recovered')).toBe('recovered');
  });

  it('a nested call for the same key, settling first, does not free the outer call', async () => {
    const flight = createSingleFlight<string>();
    const outer = deferred<string>();
    let nested!: Promise<string>;
    const first = flight.run('k', () => {
      // The outer call is registered only once fn returns, so this one is not joined to it.
      nested = flight.run('k', async () => 'nested');
      return outer.promise;
    });
    expect(await nested).toBe('nested');
    expect(flight.size).toBe(1);
    let again = 0;
    const second = flight.run('k', async () => `${++again}`);
    expect(second).toBe(first);
    outer.resolve('outer');
    expect(await second).toBe('outer');
    expect(again).toBe(0);
    expect(flight.size).toBe(0);
  });

  it('treats a synchronous throw like a rejection', async () => {
    const flight = createSingleFlight<string>();
    const p = flight.run('k', () => {
      throw new Error('sync');
    });
    await expect(p).rejects.toThrow('sync');
    expect(flight.size).toBe(0);
  });
});
