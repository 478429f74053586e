import { lexAppArmor } from '../profiles/apparmor/lex.js';

/**
 * The bundle's AppArmor text in the only form the current Security Profiles Operator accepts:
 * its AppArmorProfile has no field for raw profile text, only `spec.abstract` allow-lists
 * (executables, libraries, read-only / write-only / read-write paths, TCP/UDP/raw sockets,
 * capabilities), from which SPO writes the profile on each node.
 *
 * Rules that map one to one are translated; every other rule (deny rules, signal, ptrace, mount,
 * includes, owner/audit qualifiers, …) is reported, never dropped silently: rendering refuses a
 * profile with untranslatable rules unless the caller accepts the loss, and then says which.
 */
export interface AppArmorAbstract {
  executable?: { allowedExecutables?: string[]; allowedLibraries?: string[] };
  filesystem?: { readOnlyPaths?: string[]; writeOnlyPaths?: string[]; readWritePaths?: string[] };
  network?: { allowRaw?: boolean; allowedProtocols?: { allowTcp?: boolean; allowUdp?: boolean } };
  capability?: { allowedCapabilities?: string[] };
}

export interface AbstractTranslation {
  abstract: AppArmorAbstract;
  /** Rules (as written, trimmed) that the abstract form cannot express. */
  untranslated: string[];
}

const PATH_RULE = /^(\/[A-Za-z0-9_./*?+@{} -]*)\s+([rwamlkixpuPUCc]+)\s*,$/;
const SPO_PATH = /^\/(?:[a-zA-Z0-9_./*?+@ -]|@\{[a-zA-Z0-9_]+\})*$/;

/**
 * Lines of the profile body (between the outer braces), comments removed as apparmor_parser
 * removes them (lex.ts: `#` glued to a word is no comment), one rule per entry; spellings the
 * lexer refuses come first, as rules that cannot be translated.
 */
function rules(text: string): string[] {
  const { code, problems } = lexAppArmor(text);
  const open = code.indexOf('{');
  const close = code.lastIndexOf('}');
  const body = open >= 0 && close > open ? code.slice(open + 1, close) : code;
  return [
    ...problems,
    ...body
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0),
  ];
}

export function toAbstract(text: string): AbstractTranslation {
  const ro = new Set<string>(), wo = new Set<string>(), rw = new Set<string>(), exe = new Set<string>(), lib = new Set<string>(), caps = new Set<string>();
  let tcp = false, udp = false, raw = false;
  const untranslated: string[] = [];
  for (const rule of rules(text)) {
    let m;
    if ((m = /^capability\s+([a-z_ ]+),$/.exec(rule))) {
      for (const c of m[1].trim().split(/\s+/)) caps.add(c);
    } else if ((m = /^network\s+(inet6?)\s+(tcp|udp|stream|dgram)\s*,$/.exec(rule))) {
      if (m[2] === 'tcp' || m[2] === 'stream') tcp = true;
      else udp = true;
    } else if (/^network\s+(inet6?\s+)?raw\s*,$/.test(rule)) {
      raw = true;
    } else if ((m = PATH_RULE.exec(rule)) && SPO_PATH.test(m[1])) {
      const [path, perms] = [m[1], m[2]];
      const r = perms.includes('r'), w = /[wa]/.test(perms), x = /x/.test(perms), map = perms.includes('m');
      // SPO's allowedExecutables are exec that inherits the profile (ix). px, cx and ux (and
      // pix, pux, …) say another profile or none: as allowedExecutables they would mean
      // something else, so they are reported, not translated.
      if (/[lk]/.test(perms) || (x && /[pcu]/i.test(perms))) untranslated.push(rule);
      else {
        if (x) exe.add(path);
        if (map && !x) lib.add(path);
        if (r && w) rw.add(path);
        else if (w) wo.add(path);
        else if (r) ro.add(path);
      }
    } else {
      untranslated.push(rule);
    }
  }
  const sorted = (s: Set<string>) => (s.size ? [...s].sort() : undefined);
  const abstract: AppArmorAbstract = {};
  if (exe.size || lib.size) abstract.executable = { ...(exe.size ? { allowedExecutables: sorted(exe) } : {}), ...(lib.size ? { allowedLibraries: sorted(lib) } : {}) };
  if (ro.size || wo.size || rw.size) abstract.filesystem = { ...(ro.size ? { readOnlyPaths: sorted(ro) } : {}), ...(wo.size ? { writeOnlyPaths: sorted(wo) } : {}), ...(rw.size ? { readWritePaths: sorted(rw) } : {}) };
  if (tcp || udp || raw) abstract.network = { ...(raw ? { allowRaw: true } : {}), ...(tcp || udp ? { allowedProtocols: { ...(tcp ? { allowTcp: true } : {}), ...(udp ? { allowUdp: true } : {}) } } : {}) };
  if (caps.size) abstract.capability = { allowedCapabilities: sorted(caps) };
  return { abstract, untranslated };
}
