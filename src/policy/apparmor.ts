/**
 * "AppArmor required" means a profile that confines: no unconfined execution modes (`ux`, `Ux`,
 * `pux`, `PUx`, `cux`, `CUx`), no transition or change_profile to `unconfined`, and no
 * `unconfined` or `complain` flag (both turn enforcement off). These are lexical properties of the
 * profile text (comments stripped the way apparmor_parser strips them, mode letters in any case:
 * src/profiles/apparmor/lex.ts), so no apparmor_parser is needed to judge them; whether the
 * profile compiles is the host's and `ct profile`'s business. Text the lexer cannot read as the
 * parser does (`#` glued to a word, backslash escapes) is a finding, not a guess.
 */
import { appArmorRules, execModes, lexAppArmor } from '../profiles/apparmor/lex.js';

const MAX_PROFILE_CHARS = 256 * 1024;

export interface AppArmorFinding {
  line: number;
  text: string;
  reason: string;
}

// Qualifiers that may precede a rule (`audit deny change_profile …`).
const QUALIFIERS = /^(?:(?:audit|allow|deny|owner|quiet|priority\s*=\s*-?\d+)\s+)*/;

/**
 * Why a rule may move this profile's processes out of it, judged per rule as apparmor_parser reads
 * them (a rule may span lines; `px ->` on one line and its target on the next is one rule). Any
 * `change_profile` is one: its target may be missing (`**`), a glob or a variable that matches
 * `unconfined`, and this judgement sees no other profile. An exec transition is one when its target
 * is `unconfined` or a pattern or variable. `peer=unconfined` on signal/ptrace/unix rules names the
 * other side and is fine (docker-default has it); `link` and `mount` name paths after `->`.
 */
function transition(rule: string): string | undefined {
  const r = rule.replace(/\s+/g, ' ');
  const qualifiers = QUALIFIERS.exec(r)![0];
  if (/\bdeny\b/.test(qualifiers)) return undefined;
  const body = r.slice(qualifiers.length);
  if (/^change_profile\b/.test(body)) return 'change_profile (its target may reach unconfined; this judgement sees no other profile)';
  if (/^@\{[^}]*\}\s*\+?=/.test(body)) return /\bunconfined\b/.test(body) ? 'variable naming unconfined (a transition target may use it)' : undefined;
  if (/^(?:link|mount|remount|umount|pivot_root)\b/.test(body)) return undefined;
  const arrow = /->\s*"?([^\s"]*)/.exec(body);
  if (!arrow) return undefined;
  if (/^unconfined\b/.test(arrow[1])) return 'transition to unconfined';
  if (arrow[1] === '' || /[*?[\]{}@]/.test(arrow[1])) return 'transition to a profile named by a pattern or variable';
  return undefined;
}

const FLAGS = /\bflags\s*=\s*\(([^)]*)\)/;

export function judgeAppArmor(text: string): AppArmorFinding[] {
  if (text.length > MAX_PROFILE_CHARS) return [{ line: 0, text: '', reason: `profile larger than ${MAX_PROFILE_CHARS} characters` }];
  const out: AppArmorFinding[] = [];
  const lexed = lexAppArmor(text);
  for (const problem of lexed.problems) out.push({ line: 0, text: '', reason: problem });
  const lines = lexed.code.split('\n');
  let profiles = 0;
  for (let i = 0; i < lines.length; i++) {
    const code = lines[i].trim();
    if (!code) continue;
    if (/^(profile\s+\S+|\/\S*|[\w.-]+)\s*(flags\s*=\s*\([^)]*\)\s*)?\{/.test(code) || /^profile\s/.test(code)) profiles++;
    const flags = FLAGS.exec(code);
    if (flags && /\b(unconfined|complain)\b/.test(flags[1])) out.push({ line: i + 1, text: code.slice(0, 200), reason: 'profile flag turns enforcement off' });
    // Any rule on the line: `network inet tcp, /bin/sh ux,` is one line and two rules.
    else if (execModes(code).unconfined) {
      out.push({ line: i + 1, text: code.slice(0, 200), reason: 'unconfined execution mode (ux)' });
    }
  }
  let from = 0;
  for (const rule of appArmorRules(lexed.code)) {
    const at = lexed.code.indexOf(rule, from);
    if (at >= 0) from = at + rule.length;
    const reason = transition(rule);
    if (reason) out.push({ line: at >= 0 ? lexed.code.slice(0, at).split('\n').length : 0, text: rule.replace(/\s+/g, ' ').slice(0, 200), reason });
  }
  out.sort((x, y) => x.line - y.line);
  if (profiles === 0) out.push({ line: 0, text: '', reason: 'no profile block found' });
  return out;
}
