// jsonDepthExceeds skips strings with one search for the closing quote (#14 target 6). It must
// answer exactly as the character loop it replaced, on valid JSON and on hostile text alike:
// escaped quotes, runs of backslashes, unterminated strings, brackets inside strings.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { jsonDepthExceeds } from '../../src/core/json.js';

/** The previous implementation: one character at a time, a backslash skips the next one. */
function reference(s: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

describe('jsonDepthExceeds', () => {
  it('agrees with the character loop on random text made of JSON punctuation, quotes and backslashes', () => {
    const text = fc.array(fc.constantFrom('[', ']', '{', '}', '"', '\\', '\\\\', '\\"', 'a', ',', ':'), { maxLength: 200 }).map((xs) => xs.join(''));
    fc.assert(
      fc.property(text, fc.integer({ min: 0, max: 6 }), (s, limit) => {
        expect(jsonDepthExceeds(s, limit)).toBe(reference(s, limit));
        expect(jsonDepthExceeds(Buffer.from(s, 'latin1'), limit)).toBe(reference(s, limit));
      }),
      { seed: 14, numRuns: 5000 },
    );
  });

  it('agrees on random nested values serialised by JSON.stringify (strings holding quotes, backslashes, brackets)', () => {
    const str = fc.string({ unit: fc.constantFrom('"', '\\', '[', '{', ']', '}', 'x', '\u00e9') });
    const value = fc.letrec((tie) => ({
      v: fc.oneof({ depthSize: 'small' }, str, fc.array(tie('v'), { maxLength: 3 }), fc.dictionary(str, tie('v'), { maxKeys: 3 })),
    })).v;
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 5 }), (v, limit) => {
        const s = JSON.stringify(v);
        expect(jsonDepthExceeds(s, limit)).toBe(reference(s, limit));
      }),
      { seed: 6, numRuns: 2000 },
    );
  });

  it('counts brackets outside strings only, and stops at the limit', () => {
    expect(jsonDepthExceeds('[[["]]]]]]]]"]]]', 2)).toBe(true);
    expect(jsonDepthExceeds('["[[[[\\"[[[["]', 1)).toBe(false);
    expect(jsonDepthExceeds('["\\\\"[[', 2)).toBe(true); // the quote after an even run of backslashes closes the string
    expect(jsonDepthExceeds('["\\\\\\"[[', 2)).toBe(false); // after an odd run it is escaped: the string never closes
    expect(jsonDepthExceeds(`${'['.repeat(65)}${']'.repeat(65)}`)).toBe(true);
    expect(jsonDepthExceeds(`${'['.repeat(64)}${']'.repeat(64)}`)).toBe(false);
    expect(jsonDepthExceeds(`"${'\\"'.repeat(100_000)}`)).toBe(false); // linear on escape runs
  });
});
