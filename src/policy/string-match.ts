/**
 * String tests in policies: exact values, globs, anchored regular expressions and lists.
 *
 * Regular expressions come from a reviewed repository but are still hostile input (SPEC §7), and a
 * proposal previewed through the API is anyone's: each runs on RE2 (src/core/linear-regex.ts, time
 * linear in the input; RE2 syntax, as Kyverno and cosign), compiled anchored (`^(?:…)$` unless the
 * author anchored it), and only ever against input of at most MAX_MATCH_INPUT characters. Longer
 * input never matches: truncating it could make an anchored pattern match a prefix, and a policy
 * test that fails closed is the safe answer. Globs with two stars or more run on RE2 too: as a
 * backtracking regex, `*a*a*a*b` takes time to the power of the stars.
 */
import { linearRegex } from '../core/linear-regex.js';
import type { StringMatcher } from './types.js';

export const MAX_MATCH_INPUT = 4096;
export const MAX_PATTERN_LENGTH = 1024;

export type MatcherSpec = string | { exact?: string; glob?: string; regex?: string; oneOf?: string[] };

export interface CompileOutcome {
  matcher?: StringMatcher;
  error?: { kind: string; message: string };
  /** The author wrote a regex without ^…$ (we anchor it anyway; lint says so). */
  unanchored?: boolean;
}

function bounded(value: string | undefined): value is string {
  return typeof value === 'string' && value.length <= MAX_MATCH_INPUT;
}

/** `*` = any run of characters except `/`, `**` = any run, `?` = one character except `/`: the regex source, anchored. */
function globSource(glob: string): { source: string; stars: number } {
  let out = '';
  let stars = 0;
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      stars++;
      if (glob[i + 1] === '*') {
        out += '.*';
        i++;
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return { source: `^${out}$`, stars };
}

/**
 * A glob as a test. One star at most: V8's engine, whose backtracking is then linear in the input
 * (one `.*` to give back, character by character, anchored at the start). More: RE2.
 */
export function globTest(glob: string): (v: string) => boolean {
  const { source, stars } = globSource(glob);
  if (stars <= 1) {
    // `u`: `?` is one character (a code point), as on RE2, not half of one.
    const re = new RegExp(source, 'su');
    return (v) => re.test(v);
  }
  const re = linearRegex(source, { dotAll: true });
  return (v) => re.test(v);
}

function isAnchored(p: string): boolean {
  return p.startsWith('^') && p.endsWith('$') && !p.endsWith('\\$');
}

export function compileRegex(pattern: string): CompileOutcome {
  if (pattern.length > MAX_PATTERN_LENGTH) return { error: { kind: 'regex-too-long', message: `regular expression longer than ${MAX_PATTERN_LENGTH} characters` } };
  const anchored = isAnchored(pattern);
  // Always matched against the whole value, anchored or not: `^a|b$` searched as written is `^a`
  // or `b$` (any identity ending in b), which its author, having anchored both ends, did not mean.
  try {
    const re = linearRegex(pattern, { whole: true });
    return { matcher: { source: `regex:${pattern}`, test: (v) => bounded(v) && re.test(v) }, unanchored: !anchored };
  } catch (e) {
    return { error: { kind: 'regex-invalid', message: `regular expression does not compile (RE2 syntax): ${(e as Error).message}` } };
  }
}

/**
 * Compiles a matcher spec. A plain string is an exact value (identities) or a glob (scopes such as
 * names, registries and environments), as `plain` says.
 */
export function compileMatcher(spec: MatcherSpec, plain: 'exact' | 'glob'): CompileOutcome {
  if (typeof spec === 'string') {
    if (plain === 'exact' || !hasGlob(spec)) return { matcher: { source: spec, test: (v) => v === spec, literals: [spec] } };
    return { matcher: globMatcher(spec) };
  }
  if (spec.exact !== undefined) {
    const x = spec.exact;
    return { matcher: { source: x, test: (v) => v === x, literals: [x] } };
  }
  if (spec.glob !== undefined) return { matcher: globMatcher(spec.glob) };
  if (spec.regex !== undefined) return compileRegex(spec.regex);
  if (spec.oneOf !== undefined) {
    const set = new Set(spec.oneOf);
    return { matcher: { source: `oneOf:${spec.oneOf.join(',')}`, test: (v) => v !== undefined && set.has(v), literals: [...set] } };
  }
  return { error: { kind: 'schema', message: 'matcher needs one of exact, glob, regex, oneOf' } };
}

function globMatcher(glob: string): StringMatcher {
  const test = globTest(glob);
  const cut = glob.search(/[*?]/);
  return { source: `glob:${glob}`, test: (v) => bounded(v) && test(v), prefix: cut < 0 ? glob : glob.slice(0, cut) };
}

function hasGlob(s: string): boolean {
  return s.includes('*') || s.includes('?');
}
