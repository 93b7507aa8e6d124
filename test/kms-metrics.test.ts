import { describe, expect, it } from 'vitest';
import { createKmsMetrics } from '../src/kms/kms-metrics.js';

describe('KMS call metrics', () => {
  it('counts calls and their time per operation and outcome, and tells every listener of each call', () => {
    const metrics = createKmsMetrics();
    const heard: string[][] = [[], []];
    metrics.subscribe((op, outcome, ms) => heard[0]!.push(`${op} ${outcome} ${ms}`));
    metrics.subscribe((op, outcome, ms) => heard[1]!.push(`${op} ${outcome} ${ms}`));
    expect(metrics.count()).toBe(0);
    expect(metrics.snapshot()).toEqual([]);

    metrics.record('Decrypt', 'ok', 4);
    metrics.record('Decrypt', 'ok', 6);
    metrics.record('Decrypt', 'AccessDeniedException', 1);
    metrics.record('DecryptMore', 'ok', 2);
    metrics.record('Encrypt', 'ok', 3);

    expect(metrics.count('Decrypt')).toBe(3);
    expect(metrics.count('Encrypt')).toBe(1);
    expect(metrics.count('ReEncrypt')).toBe(0);
    expect(metrics.count()).toBe(5);
    expect(metrics.snapshot()).toEqual([
      { operation: 'Decrypt', outcome: 'ok', count: 2, totalMs: 10 },
      { operation: 'Decrypt', outcome: 'AccessDeniedException', count: 1, totalMs: 1 },
      { operation: 'DecryptMore', outcome: 'ok', count: 1, totalMs: 2 },
      { operation: 'Encrypt', outcome: 'ok', count: 1, totalMs: 3 },
    ]);
    const expected = ['Decrypt ok 4', 'Decrypt ok 6', 'Decrypt AccessDeniedException 1', 'DecryptMore ok 2', 'Encrypt ok 3'];
    expect(heard).toEqual([expected, expected]);
  });
});
