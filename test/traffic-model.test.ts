import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyWrite, ConversationModel, patched, type State, type WriteOutcome } from '../bench/soak/conversation-model.js';

/**
 * The traffic model of the soak and the fault cases judges the service: it must accept every state
 * a conversation can really be in after the answers the client saw, and nothing else.
 */

describe('what a write answer says', () => {
  it('classifies answers by what the service guarantees', () => {
    expect(classifyWrite({ status: 200 })).toBe('applied');
    expect(classifyWrite({ status: 400, code: 'bad.request' })).toBe('notApplied');
    expect(classifyWrite({ status: 424, code: 'customer.key.error' })).toBe('notApplied');
    expect(classifyWrite({ status: 503, code: 'customer.key.unreachable' })).toBe('notApplied');
    expect(classifyWrite({ status: 503, code: 'secured.data.contention' })).toBe('notApplied');
    expect(classifyWrite({ status: 503, code: 'service.unavailable' })).toBe('unknown');
    expect(classifyWrite({ status: 500, code: 'internal.server.error' })).toBe('unknown');
    expect(classifyWrite({ status: 502 })).toBe('unknown');
    expect(classifyWrite({ status: 0, refused: true })).toBe('notApplied');
    expect(classifyWrite({ status: 0 })).toBe('inDoubt');
  });
});

describe('ConversationModel', () => {
  it('a conversation whose creates all failed during an outage is not found, however many there were', () => {
    const model = new ConversationModel();
    for (let i = 0; i < 40; i++) {
      model.wrote(i % 2 ? 'unknown' : 'notApplied', (s) => (i % 3 ? { v: `put-${i}` } : patched(s, { p: `patch-${i}` })), 0);
      expect(model.observed(null)).toBe(true); // the service answers 404: right, the creates did not happen
    }
    expect(model.observed({ v: 'put-1' })).toBe(false);
  });

  it('an acknowledged write stays the only right answer after many requests that got no answer', () => {
    const model = new ConversationModel();
    model.wrote('applied', () => ({ v: 'acked' }), 0);
    for (let i = 0; i < 40; i++) model.wrote('notApplied', () => ({ v: `refused-${i}` }), 0);
    expect(model.candidates).toEqual([{ v: 'acked' }]);
    expect(model.observed({ v: 'refused-3' })).toBe(false);
    expect(model.observed(null)).toBe(false);
    expect(model.observed({ v: 'acked' })).toBe(true);
  });

  it('a write in doubt may land after a read of the old state, not before a read of the new one', () => {
    const model = new ConversationModel();
    model.wrote('applied', () => ({ v: 'a' }), 0);
    model.wrote('inDoubt', () => ({ v: 'b' }), 0);
    expect(model.writable).toBe(false);
    expect(model.observed({ v: 'a' })).toBe(true);
    expect(model.writable).toBe(false); // it may still land
    expect(model.observed({ v: 'b' })).toBe(true);
    expect(model.writable).toBe(true);
    expect(model.observed({ v: 'a' })).toBe(false); // once landed it does not go back
  });

  it('refuses a write while the state is unsettled', () => {
    const model = new ConversationModel();
    model.wrote('unknown', () => ({ v: 'x' }), 0);
    expect(() => model.wrote('applied', () => ({ v: 'y' }), 0)).toThrow(/settled/);
  });

  // A simulated store behind the answers: whatever it really does within what each answer allows,
  // the model accepts every read of it, holds at most two states, and exactly one after an acknowledged write.
  it('accepts every real history and stays exact (property)', () => {
    const op = fc.record({
      kind: fc.constantFrom('put', 'patch', 'delete-attr'),
      outcome: fc.constantFrom<WriteOutcome>('applied', 'notApplied', 'unknown', 'inDoubt'),
      // unknown: whether it committed; inDoubt: steps until it lands (0: now), or never.
      committed: fc.boolean(),
      landsAfter: fc.option(fc.nat({ max: 5 }), { nil: undefined }),
      value: fc.constantFrom('a', 'b', 'c'), // few values: writes that change nothing happen too
    });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const model = new ConversationModel();
        let real: State = null;
        let late: { to: (s: State) => State; in: number } | undefined;
        for (const o of ops) {
          if (late && late.in-- <= 0) {
            real = late.to(real);
            late = undefined;
          }
          if (!model.writable) {
            expect(model.observed(real)).toBe(true); // the generator reads until the state settles
            expect(model.observed({ never: 'written' })).toBe(false);
            continue;
          }
          const apply = (s: State): State =>
            o.kind === 'put' ? { v: o.value } : o.kind === 'patch' ? patched(s, { p: o.value }) : patched(s, { v: null, p: o.value });
          model.wrote(o.outcome, apply, 0);
          if (o.outcome === 'applied' || (o.outcome === 'unknown' && o.committed)) real = apply(real);
          if (o.outcome === 'inDoubt' && o.landsAfter !== undefined) {
            if (o.landsAfter === 0) real = apply(real);
            else late = { to: apply, in: o.landsAfter };
          }
          if (o.outcome === 'applied') expect(model.candidates).toEqual([real]);
          expect(model.candidates.length).toBeLessThanOrEqual(2);
          expect(model.observed(real)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});
