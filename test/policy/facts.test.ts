/**
 * Condition paths over attestation predicates (src/policy/facts.ts): `*` fans out over arrays and
 * objects, bounded, whatever the size of what an attestation carries.
 */
import { describe, expect, it } from '@jest/globals';
import { valuesAt } from '../../src/policy/facts.js';

describe('valuesAt', () => {
  it('fans * out over a predicate array of a million values without overflowing the stack, bounded to 256', () => {
    const predicate = { materials: Array.from({ length: 1_000_000 }, (_, i) => ({ uri: `git+https://example/${i}` })) };
    const values = valuesAt(predicate, ['materials', '*', 'uri']);
    expect(values).toHaveLength(256);
    expect(values[0]).toBe('git+https://example/0');
    const keyed = Object.fromEntries(Array.from({ length: 200_000 }, (_, i) => [`k${i}`, i]));
    expect(valuesAt({ m: keyed }, ['m', '*'])).toHaveLength(256);
  });

  it('reads named fields, array indexes and own properties only', () => {
    const p = { a: [{ b: 1 }, { b: 2 }], o: { x: 'y' } };
    expect(valuesAt(p, ['a', '*', 'b'])).toEqual([1, 2]);
    expect(valuesAt(p, ['a', '1', 'b'])).toEqual([2]);
    expect(valuesAt(p, ['o', 'constructor'])).toEqual([]);
  });
});
