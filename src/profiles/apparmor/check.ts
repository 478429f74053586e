import { CtError } from '../../core/errors.js';
import { appArmorRules, execModes, isTransitionArrow, lexAppArmor } from './lex.js';

/**
 * Checks AppArmor text a bundle supplies (`security/apparmor`) and gives it the host's name.
 * The text must hold exactly one top-level `profile NAME … { … }`; what it may not do:
 *  - pick a name the host would honour (the host replaces it; a name like `unconfined`, `runc`,
 *    `docker-default`, an attachment path `/…`, or a namespace `:ns:` is refused outright);
 *  - exec unconfined (`ux`, `Ux`, `pux`, `PUx`, `cux`, `CUx`, in any case) or mention `unconfined` anywhere
 *    except docker-default's `signal (receive) peer=unconfined`;
 *  - leave the profile in any other way: exec into another profile (`px`, `Px`, `cx`, `Cx`, `pix`,
 *    …, in any case, by attachment or `-> name`), `change_profile`, `change_onexec`,
 *    `pivot_root -> name` (`->` in link and mount rules names a path and is fine). The
 *    host has profiles of its own, and some are in unconfined mode (Ubuntu 24.04's `runc`, `crun`
 *    and dozens more, attached to host paths): a way out of this profile is a way out of
 *    confinement. Exec inherits it (`ix`) or nothing;
 *  - run in complain/kill/unconfined mode (flags other than attach_disconnected, mediate_deleted,
 *    chroot_relative, namespace_relative);
 *  - define hats or child profiles, or include files by absolute or quoted path or out of the
 *    parser's directory (`..`);
 *  - use spellings the parser reads otherwise than this check (lex.ts): `#` glued to a word,
 *    backslash escapes, quoted strings across lines.
 * Every problem is reported at once. apparmor_parser -Q (lint.ts) then checks the grammar.
 */
const RESERVED = new Set(['unconfined', 'runc', 'crun', 'containerd', 'docker-default', 'default', 'kernel', 'init', 'lsb_release']);
const ALLOWED_FLAGS = new Set(['attach_disconnected', 'mediate_deleted', 'chroot_relative', 'namespace_relative', 'no_attach_disconnected']);

const HEADER = /^\s*(?:profile\s+("[^"]*"|[^\s{]+)(?:\s+("[^"]*"|\/[^\s{]*))?|("[^"]*"|\/[^\s{]*))\s*(?:flags\s*=\s*\(([^)]*)\)\s*)?\{/;

export interface CheckedAppArmor {
  /** The text with the declared name replaced by the host's. */
  text: string;
  declaredName: string;
}

export function checkBundleAppArmor(text: string, where = 'security/apparmor', hostName?: string): CheckedAppArmor {
  const problems: string[] = [];
  if (text.includes('\0')) problems.push('contains a NUL byte');
  // Comments out, by the parser's rules (lex.ts); spellings that would read differently here and
  // in the parser (`#` glued to a word, backslash escapes) are refused.
  const lexed = lexAppArmor(text);
  problems.push(...lexed.problems);
  const body = lexed.code;

  // Top-level structure. A `{` preceded by `@`, `/` or a path character opens a variable or a glob
  // alternation (`@{PROC}`, `/etc/{a,b}`); other braces open blocks. Every block opened at depth 0
  // must be the one profile; blocks inside it would be hats or child profiles.
  let depth = 0;
  const stack: ('glob' | 'block')[] = [];
  let profiles = 0;
  let declaredName = '';
  let headerStart = -1;
  let headerEnd = -1;
  const lineStarts: number[] = [0];
  for (let i = 0; i < body.length; i++) if (body[i] === '\n') lineStarts.push(i + 1);
  for (let i = 0; i < body.length; i++) {
    const ch = body[i];
    if (ch === '{') {
      const prev = i > 0 ? body[i - 1] : '\n';
      if (/[\s)"]/.test(prev) === false && i > 0) {
        stack.push('glob');
        continue;
      }
      stack.push('block');
      if (depth === 0) {
        profiles++;
        let ls = 0;
        for (const s of lineStarts) if (s <= i) ls = s;
        const header = body.slice(ls, i + 1);
        const m = HEADER.exec(header);
        if (!m) problems.push(`line ${lineStarts.indexOf(ls) + 1}: not a profile header`);
        else {
          declaredName = (m[1] ?? m[3] ?? '').replace(/^"|"$/g, '');
          if (m[2]) problems.push(`profile declares an attachment ${m[2]}: the host attaches profiles itself`);
          for (const f of (m[4] ?? '').split(/[\s,]+/).filter(Boolean)) {
            if (!ALLOWED_FLAGS.has(f)) problems.push(`profile flag ${JSON.stringify(f)} is not allowed (only enforce mode)`);
          }
          headerStart = ls;
          headerEnd = i;
        }
      } else {
        problems.push('hats and child profiles are not allowed');
      }
      depth++;
    } else if (ch === '}') {
      const kind = stack.pop();
      if (kind === 'glob') continue;
      depth--;
      if (depth < 0 || kind === undefined) {
        problems.push('unbalanced braces');
        depth = 0;
      }
    }
  }
  if (depth !== 0) problems.push('unbalanced braces');
  if (profiles !== 1) problems.push(`must define exactly one profile (found ${profiles})`);
  if (declaredName) {
    if (RESERVED.has(declaredName) || declaredName.startsWith('/') || declaredName.startsWith(':') || declaredName.includes('//')) {
      problems.push(`profile name ${JSON.stringify(declaredName)} is a system name`);
    }
  }

  const rules: [RegExp, string][] = [
    [/->\s*"?unconfined\b/, 'transitions to unconfined'],
    [/\bchange_profile\b/, 'change_profile is not allowed'],
    [/\bchange_onexec\b/, 'change_onexec is not allowed'],
    [/^\s*\^/m, 'hats are not allowed'],
    [/\bhat\s+\S+\s*\{/, 'hats are not allowed'],
    // Quoted, absolute or with `..`: any file of the host, read by apparmor_parser as root (its
    // first bytes come back in the diagnostics; a FIFO or trace_pipe never ends).
    [/(?:#|\b)include\s*(?:if\s+exists\s*)?(?:"|<\s*\/|<[^>\n]*\.\.)/, 'includes must name an abstraction (<abstractions/…>)'],
  ];
  for (const [re, what] of rules) if (re.test(body)) problems.push(what);
  // Mode words in any case, also glued to a quoted path (lex.ts).
  const modes = execModes(body);
  if (modes.unconfined) problems.push('execs unconfined (ux/Ux/pux/cux)');
  if (modes.transition) problems.push('execs into another profile (px/Px/cx/Cx)');
  // Transition rules name their target after `->` (exec, change_profile, pivot_root); link and
  // mount rules name a path there and keep their meaning.
  if (appArmorRules(body).some(isTransitionArrow)) problems.push('transitions to another profile (->; a link rule is written link /a -> /b)');
  // docker-default lets unconfined (host) processes signal the container; any other mention of
  // unconfined (flags, peers it may signal or trace, targets) is refused.
  const rest = body.replace(/\bsignal\s*\(\s*receive\s*\)\s*peer\s*=\s*"?unconfined"?/g, '');
  if (/\bunconfined\b/.test(rest)) problems.push('mentions unconfined');

  if (problems.length > 0) {
    throw new CtError('PROFILE_INVALID', `${where}: AppArmor profile refused: ${[...new Set(problems)].join('; ')}`, { path: where, problems: [...new Set(problems)] });
  }
  let out = text;
  if (hostName !== undefined) {
    // Replace the declared name in the header only; the rest of the text keeps its meaning.
    const header = body.slice(headerStart, headerEnd + 1);
    const renamed = header.replace(/^(\s*)(?:profile\s+)?("[^"]*"|[^\s{]+)/, `$1profile "${hostName}"`);
    out = text.slice(0, headerStart) + renamed + text.slice(headerEnd + 1);
  }
  return { text: out, declaredName };
}
