/**
 * String tests in policies: exact values, globs, anchored regular expressions and lists.
 *
 * Regular expressions come from a reviewed repository but are still hostile input (SPEC §7): each
 * is checked with safe-regex2 for catastrophic backtracking, compiled anchored (`^(?:…)$` unless
 * the author anchored it), and only ever run against input of at most MAX_MATCH_INPUT characters.
 * Longer input never matches: truncating it could make an anchored pattern match a prefix, and a
 * policy test that fails closed is the safe answer.
 */
import safeRegexModule from 'safe-regex2';
import type { StringMatcher } from './types.js';

const safeRegex = safeRegexModule as unknown as (re: string | RegExp, opts?: { limit?: number }) => boolean;

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

function regexMatcher(source: string, re: RegExp): StringMatcher {
  return { source, test: (v) => bounded(v) && re.test(v) };
}

/** `*` = any run of characters except `/`, `**` = any run, `?` = one character except `/`. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') {
      if (glob[i + 1] === '*') {
        out += '.*';
        i++;
      } else out += '[^/]*';
    } else if (c === '?') out += '[^/]';
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`, 's');
}

function isAnchored(p: string): boolean {
  return p.startsWith('^') && p.endsWith('$') && !p.endsWith('\\$');
}

export function compileRegex(pattern: string): CompileOutcome {
  if (pattern.length > MAX_PATTERN_LENGTH) return { error: { kind: 'regex-too-long', message: `regular expression longer than ${MAX_PATTERN_LENGTH} characters` } };
  const anchored = isAnchored(pattern);
  const full = anchored ? pattern : `^(?:${pattern})$`;
  let re: RegExp;
  try {
    re = new RegExp(full);
  } catch (e) {
    return { error: { kind: 'regex-invalid', message: `regular expression does not compile: ${(e as Error).message}` } };
  }
  if (!safeRegex(full)) {
    return { error: { kind: 'regex-unsafe', message: `regular expression ${JSON.stringify(pattern)} can backtrack catastrophically (safe-regex2); rewrite it without nested quantifiers` } };
  }
  return { matcher: regexMatcher(`regex:${pattern}`, re), unanchored: !anchored };
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
  const re = globToRegExp(glob);
  const cut = glob.search(/[*?]/);
  return { source: `glob:${glob}`, test: (v) => bounded(v) && re.test(v), prefix: cut < 0 ? glob : glob.slice(0, cut) };
}

function hasGlob(s: string): boolean {
  return s.includes('*') || s.includes('?');
}
