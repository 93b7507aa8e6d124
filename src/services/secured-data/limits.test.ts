import { describe, expect, it } from 'vitest';
import { checkConversationId, MAX_ATTRIBUTES, MAX_VALUE_LENGTH, parseSecuredDataBody } from './limits.js';

describe('secured data limits', () => {
  it('accepts names of [A-Za-z0-9_.-]{1,128} and string values up to 32,000 characters', () => {
    const change = parseSecuredDataBody({ data: { 'card.number_1-x': 'x'.repeat(MAX_VALUE_LENGTH), ['n'.repeat(128)]: '' } }, { allowNull: false });
    expect(change.set.size).toBe(2);
  });

  it('answers 413 MaximumDataSizeExceeded beyond the limits, 400 for malformed input', () => {
    const attempt = (body: unknown, allowNull = false) => {
      try {
        parseSecuredDataBody(body, { allowNull });
        return undefined;
      } catch (err) {
        return err as { status: number; errorType?: string };
      }
    };
    expect(attempt({ data: { a: 'x'.repeat(MAX_VALUE_LENGTH + 1) } })).toMatchObject({ status: 413, errorType: 'MaximumDataSizeExceeded' });
    const many = Object.fromEntries(Array.from({ length: MAX_ATTRIBUTES + 1 }, (_, i) => [`a${i}`, 'v']));
    expect(attempt({ data: many })).toMatchObject({ status: 413, errorType: 'MaximumDataSizeExceeded' });
    expect(attempt({ data: { ['n'.repeat(129)]: 'v' } })).toMatchObject({ status: 400, errorType: 'MaximumDataSizeExceeded' });
    expect(attempt({ data: { 'a b': 'v' } })).toMatchObject({ status: 400 });
    expect(attempt({ data: { '': 'v' } })).toMatchObject({ status: 400 });
    expect(attempt({ data: { a: 1 } })).toMatchObject({ status: 400 });
    expect(attempt({ data: { a: '\uD800' } })).toMatchObject({ status: 400 });
    expect(attempt({ data: { a: null } })).toMatchObject({ status: 400 });
    expect(attempt({ data: { a: null } }, true)).toBeUndefined();
    expect(attempt({})).toMatchObject({ status: 400 });
    expect(attempt({ data: [] })).toMatchObject({ status: 400 });
  });

  it('checks conversation ids', () => {
    expect(checkConversationId('3f1c9a2e-6b7d-4e8f-9a0b-1c2d3e4f5a6b')).toBeTruthy();
    expect(checkConversationId(`conv:${'x'.repeat(95)}`)).toHaveLength(100);
    for (const bad of ['', 'a/b', 'a b', 'x'.repeat(101), 'a\nb']) expect(() => checkConversationId(bad)).toThrow();
  });
});
