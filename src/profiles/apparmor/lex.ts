/**
 * How apparmor_parser (3.0) reads AppArmor text, as far as a lexical check needs it: where
 * comments, quoted strings and rules end, and how exec modes are written. Shared by the bundle
 * check (check.ts) and the policy judge (src/policy/apparmor.ts) so that neither can be told
 * apart from the parser by a spelling the other one handles.
 *
 *  - `#` starts a comment only at the start of a line or after whitespace or `,`; glued to a word
 *    (`/tmp/a#b`, `inet#x`, `r#x`) it is part of the word, so `/tmp/a#b r, /bin/sh ux,` is two
 *    rules. Such a `#` is refused rather than modelled. `#include` is an include wherever it
 *    stands, never a comment.
 *  - Backslash escapes change where strings, words and comments end (`"a\"#"`, `/a\ #b`,
 *    `/a\"`) and spell any byte (`unconfine\x64`): no backslash is accepted outside comments.
 *  - Quoted strings may span lines for the parser; here a newline in one is refused, so that a
 *    line-by-line reading stays the parser's reading.
 *  - Mode letters are case-insensitive to the parser (`UX` is `ux`, `PX` is `px`) and a mode may
 *    follow a quoted path with nothing between (`"/usr/sbin/runc"Px,`).
 */

export interface AppArmorCode {
  /** The text with comments blanked by spaces: offsets and line numbers are the original's. */
  code: string;
  /** What the text does that is refused rather than modelled (empty when none). */
  problems: string[];
}

export function lexAppArmor(text: string): AppArmorCode {
  // One problem per kind, at its first line: a text of many backslashes is one problem.
  const problems = new Map<string, string>();
  const add = (kind: string, message: string) => {
    if (!problems.has(kind)) problems.set(kind, message);
  };
  let code = '';
  let inQuote = false;
  let line = 1;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '\n') {
      if (inQuote) add('newline', `line ${line}: a quoted string spans lines`);
      inQuote = false;
      line++;
      code += ch;
      continue;
    }
    if (ch === '\\') add('backslash', `line ${line}: backslash escapes are not allowed`);
    if (ch === '"') inQuote = !inQuote;
    if (ch === '#' && !inQuote) {
      const prev = i === 0 ? '\n' : text[i - 1];
      if (!/[\s,]/.test(prev)) add('hash', `line ${line}: "#" inside a word (the parser reads it as part of the word, not as a comment)`);
    }
    if (ch === '#' && !inQuote && !text.startsWith('#include', i)) {
      // Blank to the end of the line: what follows is a comment (or refused above).
      const end = text.indexOf('\n', i);
      const stop = end < 0 ? text.length : end;
      code += ' '.repeat(stop - i);
      i = stop - 1;
      continue;
    }
    code += ch;
  }
  if (inQuote) add('quote', `line ${line}: unterminated quoted string`);
  return { code, problems: [...problems.values()] };
}

// A file rule's permission word: mode letters in any case (r w a l k m x i u p c). It starts a
// line or follows whitespace, a `,` or a closing quote, and ends at whitespace, `,`, `->`, a quote
// or the end. Matched whole and judged apart (no `[…]*ux[…]*` pattern, which backtracks
// quadratically on a long word of mode letters).
const MODE_WORD = /(?:^|[\s,"])([rwaklmixpcu]+)(?=[\s,"]|->|$)/gim;

export interface ExecModes {
  /** ux, Ux, UX, pux, PUx, cux, rux, "…"Ux, …: exec without confinement. */
  unconfined: boolean;
  /** px, Px, PX, cx, pix, rPx, "…"Px, …: exec into another profile. */
  transition: boolean;
}

export function execModes(code: string): ExecModes {
  const found: ExecModes = { unconfined: false, transition: false };
  for (const m of code.matchAll(MODE_WORD)) {
    const word = m[1].toLowerCase();
    if (word.includes('ux')) found.unconfined = true;
    if (/[pc][iu]?x/.test(word)) found.transition = true;
  }
  return found;
}

/**
 * The rules of (comment-free) code, split where the parser ends them: at `,` outside parentheses,
 * quotes and glob alternations (`{a,b}`), and at the braces of blocks.
 */
export function appArmorRules(code: string): string[] {
  const out: string[] = [];
  let start = 0;
  let parens = 0;
  let globs = 0;
  let inQuote = false;
  const cut = (end: number) => {
    const rule = code.slice(start, end).trim();
    if (rule) out.push(rule);
    start = end + 1;
  };
  for (let i = 0; i < code.length; i++) {
    const ch = code[i];
    if (ch === '"') inQuote = !inQuote;
    if (inQuote) continue;
    if (ch === '(') parens++;
    else if (ch === ')') parens = Math.max(0, parens - 1);
    else if (ch === '{') {
      // As in check.ts: a `{` glued to a word opens an alternation, otherwise a block.
      if (i > 0 && !/[\s)"]/.test(code[i - 1])) globs++;
      else cut(i);
    } else if (ch === '}') {
      if (globs > 0) globs--;
      else cut(i);
    } else if (ch === ',' && parens === 0 && globs === 0) cut(i);
  }
  cut(code.length);
  return out;
}

/**
 * `->` names another profile in exec rules (`/x px -> name`, `/x x -> name`), change_profile,
 * change_onexec and pivot_root; in `link /a -> /b` and `mount … -> /mnt/` it names a path and is
 * no transition. True for a rule whose `->` is not one of those two.
 */
export function isTransitionArrow(rule: string): boolean {
  if (!rule.includes('->')) return false;
  return !/^(?:(?:audit|deny|allow|owner)\s+)*(?:link|mount)(?:\s|$)/.test(rule);
}
