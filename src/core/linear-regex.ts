/**
 * Regular expressions written by someone else (policies, identity patterns, sign-in rules) run by
 * RE2 (re2js): time linear in the input, whatever the pattern. V8's backtracking engine takes
 * exponential time on patterns such as `(a|a)*` or `.*a.*a.*a.*b`, which no static check catches
 * reliably (safe-regex2 accepted both; one API request with such a policy froze the server).
 * The syntax is RE2's, as in cosign, Kyverno and Go: no lookaround, no back-references; `.` is
 * one code point, `\s` ASCII whitespace. Where JavaScript's `.` stops at \r, U+2028 and U+2029
 * and RE2's does not, an input holding one never matches unless `dotAll` (no identity, ref or
 * name has one: fail closed rather than let `release-.*` take `release-x\u2028…`).
 *
 * RE2 in JavaScript is slower per character than V8's engine, and the same few values (an
 * environment, an identity) are tested again and again: each pattern remembers its last answers.
 */
import { RE2JS } from 're2js';

/** Answers remembered per pattern (then forgotten together: an attacker's distinct inputs cannot grow it). */
const MEMO = 256;

/** Line terminators JavaScript's `.` does not match but RE2's does (\n is excluded by both). */
const LINE_BREAKS = /[\r\u2028\u2029]/;

export interface LinearRegex {
  readonly source: string;
  test(input: string): boolean;
}

/**
 * Compiles `source`, found anywhere in the input (the caller anchors it as it needs) or, with
 * `whole`, matching the whole input. `dotAll`: `.` matches newlines too. Throws an Error with RE2's message when the pattern does not compile.
 */
export function linearRegex(source: string, opts: { dotAll?: boolean; whole?: boolean } = {}): LinearRegex {
  let re: RE2JS;
  try {
    re = RE2JS.compile(source, opts.dotAll ? RE2JS.DOTALL : 0);
  } catch (e) {
    throw new Error(String((e as Error).message ?? e).replace(/^error parsing regexp: /, ''));
  }
  const memo = new Map<string, boolean>();
  return {
    source,
    test(input: string): boolean {
      if (!opts.dotAll && LINE_BREAKS.test(input)) return false;
      const known = memo.get(input);
      if (known !== undefined) return known;
      // `whole`: the whole input must match (RE2's full match), with no text added to the
      // pattern: `^(?:` + p + `)$` let a pattern with an unbalanced `)` close the group itself.
      const found = opts.whole ? re.matcher(input).matches() : re.matcher(input).find();
      if (memo.size >= MEMO) memo.clear();
      memo.set(input, found);
      return found;
    },
  };
}
