/**
 * "AppArmor required" means a profile that confines: no unconfined execution modes (`ux`, `Ux`,
 * `pux`, `PUx`, `cux`, `CUx`), no transition or change_profile to `unconfined`, and no
 * `unconfined` or `complain` flag (both turn enforcement off). These are lexical properties of the
 * profile text (comments stripped the way apparmor_parser strips them, mode letters in any case:
 * src/profiles/apparmor/lex.ts), so no apparmor_parser is needed to judge them; whether the
 * profile compiles is the host's and `ct profile`'s business. Text the lexer cannot read as the
 * parser does (`#` glued to a word, backslash escapes) is a finding, not a guess.
 */
import { execModes, lexAppArmor } from '../profiles/apparmor/lex.js';

const MAX_PROFILE_CHARS = 256 * 1024;

export interface AppArmorFinding {
  line: number;
  text: string;
  reason: string;
}

// A transition of this profile's processes to unconfined (`px -> unconfined`, `change_profile -> unconfined`,
// `change_profile unconfined`), in any rule of the line and after qualifiers (`audit`, `owner`, …):
// apparmor_parser reads `network inet tcp, change_profile unconfined,` as two rules.
// `peer=unconfined` on signal/ptrace/unix rules names the other side and is fine (docker-default has it).
const TO_UNCONFINED = /->\s*"?unconfined\b|\bchange_profile\b[^,]*?"?\bunconfined\b/;
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
    else if (TO_UNCONFINED.test(code)) out.push({ line: i + 1, text: code.slice(0, 200), reason: 'transition to unconfined' });
    // Any rule on the line: `network inet tcp, /bin/sh ux,` is one line and two rules.
    else if (execModes(code).unconfined) {
      out.push({ line: i + 1, text: code.slice(0, 200), reason: 'unconfined execution mode (ux)' });
    }
  }
  if (profiles === 0) out.push({ line: 0, text: '', reason: 'no profile block found' });
  return out;
}
