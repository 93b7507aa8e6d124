import { describe, expect, it, vi } from 'vitest';
import { FaultController, FaultSettingsError } from './fault-controller.js';

describe('FaultController', () => {
  it('is off by default', () => {
    const f = new FaultController();
    expect(f.get()).toEqual({ latencyMs: {}, throttle: { ratio: 0 }, outage: 'none' });
    expect(f.latencyFor('Decrypt')).toBe(0);
    expect(Array.from({ length: 10 }, () => f.shouldThrottle('Decrypt')).some(Boolean)).toBe(false);
  });

  it('throttles exactly the ratio, evenly, only for the operations named', () => {
    const f = new FaultController();
    f.set({ throttle: { ratio: 0.25, operations: ['Decrypt'] } });
    const decisions = Array.from({ length: 8 }, () => f.shouldThrottle('Decrypt'));
    expect(decisions).toEqual([false, false, false, true, false, false, false, true]);
    expect(f.shouldThrottle('Encrypt')).toBe(false);
    f.set({ throttle: { ratio: 1 } });
    expect(f.shouldThrottle('Encrypt') && f.shouldThrottle('CreateKey')).toBe(true);
  });

  it('takes per-operation latency over the * default', () => {
    const f = new FaultController();
    f.set({ latencyMs: { '*': 5, Decrypt: 50 } });
    expect(f.latencyFor('Decrypt')).toBe(50);
    expect(f.latencyFor('Encrypt')).toBe(5);
  });

  it.each([
    [{ throttle: { ratio: -0.1 } }],
    [{ throttle: { ratio: 0.5, operations: ['*'] } }],
    [{ latencyMs: { Decrypt: -1 } }],
    [{ latencyMs: { 'drop table': 1 } }],
    [{ outage: 'maybe' }],
    [{ outage: 'unavailable', outageForMs: 0 }],
  ])('rejects %j', (patch) => {
    const f = new FaultController();
    expect(() => f.set(patch as never)).toThrow(FaultSettingsError);
    expect(f.get().outage).toBe('none');
  });

  it('ends an outage by itself after outageForMs, telling listeners', async () => {
    vi.useFakeTimers();
    try {
      const f = new FaultController();
      const seen: string[] = [];
      f.onOutageChange((mode) => void seen.push(mode));
      f.set({ outage: 'refused', outageForMs: 1000 });
      expect(f.outage).toBe('refused');
      vi.advanceTimersByTime(999);
      expect(f.outage).toBe('refused');
      vi.advanceTimersByTime(1);
      expect(f.outage).toBe('none');
      expect(seen).toEqual(['refused', 'none']);
      f.dispose();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('FaultGate', () => {
  it('holds requests of its operation until released, counts arrivals, and is gone afterwards', async () => {
    const f = new FaultController();
    const gate = f.hold('Decrypt');
    expect(() => f.hold('Decrypt')).toThrow(FaultSettingsError);
    expect(() => f.hold('*')).toThrow(FaultSettingsError);
    const passed: string[] = [];
    const first = f.passGate('Decrypt').then(() => passed.push('first'));
    const second = f.passGate('Decrypt').then(() => passed.push('second'));
    await f.passGate('Encrypt'); // another operation is not held
    await gate.waitFor(2);
    expect(gate.arrived).toBe(2);
    await Promise.resolve();
    expect(passed).toEqual([]);
    gate.release();
    await Promise.all([first, second]);
    expect(passed).toEqual(['first', 'second']);
    await f.passGate('Decrypt'); // released: no gate any more
    expect(f.hold('Decrypt')).not.toBe(gate);
  });

  it('reset releases every gate', async () => {
    const f = new FaultController();
    f.hold('ReEncrypt');
    const held = f.passGate('ReEncrypt');
    f.reset();
    await held;
  });
});
