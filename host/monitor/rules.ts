import { parse as parseYaml } from 'yaml';
import { CtError } from '../../src/core/errors.js';
import { SYSCALLS_X86_64 } from '../../src/profiles/seccomp/syscalls-x86_64.js';

/**
 * The monitoring rule language (docs/monitor-rules.md): closed. A rule file is
 *
 *   version: 1
 *   rules:
 *     - name: unexpected-exec        # [a-z0-9][a-z0-9-]{0,62}
 *       kind: exec                   # exec | denied-syscalls | module-load | namespace-escape | proc-sys-write
 *       allow: [/bin/sh, /app/run]   # exec only: absolute paths allowed to be executed
 *       severity: warning            # info | warning | critical (default warning)
 *     - name: seccomp-denials
 *       kind: denied-syscalls
 *       syscalls: [mkdir, mkdirat]   # optional: only these (names of this host's architecture)
 *
 * Nothing a bundle writes ever reaches the bpftrace program as text: names become integers,
 * syscall names become numbers, and paths match a strict pattern before being quoted.
 */
export type RuleKind = 'exec' | 'denied-syscalls' | 'module-load' | 'namespace-escape' | 'proc-sys-write';
export type Severity = 'info' | 'warning' | 'critical';

export interface MonitorRule {
  name: string;
  kind: RuleKind;
  severity: Severity;
  /** exec: binaries allowed to be executed (absolute paths). */
  allow?: string[];
  /** denied-syscalls: only report these (names). */
  syscalls?: string[];
}

export interface MonitorRules {
  version: 1;
  rules: MonitorRule[];
}

const KINDS: ReadonlySet<string> = new Set(['exec', 'denied-syscalls', 'module-load', 'namespace-escape', 'proc-sys-write']);
const SEVERITIES: ReadonlySet<string> = new Set(['info', 'warning', 'critical']);
const NAME_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
/**
 * Allowed exec paths: absolute, plain characters only, at most 126 characters. bpftrace reads the
 * exec'd file name into a 128-byte buffer (BPFTRACE_STRLEN, set by monitor.ts): a longer name is
 * cut to 127 characters, which can never equal an allowed path of 126 or fewer.
 */
const PATH_RE = /^\/[A-Za-z0-9._+@-]+(?:\/[A-Za-z0-9._+@-]+)*$/;
export const MAX_PATH = 126;
const SYSCALL_NAMES = new Set(SYSCALLS_X86_64.values());
const MAX_RULES = 64;
const MAX_LIST = 256;

function stringList(v: unknown, where: string, problems: string[], ok: (s: string) => boolean, what: string): string[] | undefined {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_LIST) {
    problems.push(`${where}: must be a list of 1 to ${MAX_LIST} ${what}`);
    return undefined;
  }
  const out: string[] = [];
  v.forEach((s, i) => {
    if (typeof s === 'string' && ok(s)) out.push(s);
    else problems.push(`${where}[${i}]: must be ${what}`);
  });
  return out;
}

/** Validates a parsed rule document; reports every problem at once. */
export function checkRules(doc: unknown, where = 'security/monitor.yaml'): MonitorRules {
  const problems: string[] = [];
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new CtError('MONITOR_RULES_INVALID', `${where}: must be a mapping with version and rules`, { path: where });
  }
  const d = doc as Record<string, unknown>;
  for (const k of Object.keys(d)) if (k !== 'version' && k !== 'rules') problems.push(`${k}: unknown field`);
  if (d.version !== 1) problems.push('version: must be 1');
  const rules: MonitorRule[] = [];
  if (!Array.isArray(d.rules) || d.rules.length === 0 || d.rules.length > MAX_RULES) {
    problems.push(`rules: must be a list of 1 to ${MAX_RULES} rules`);
  } else {
    const names = new Set<string>();
    d.rules.forEach((r, i) => {
      const at = `rules[${i}]`;
      if (!r || typeof r !== 'object' || Array.isArray(r)) {
        problems.push(`${at}: must be a mapping`);
        return;
      }
      const rule = r as Record<string, unknown>;
      const known = new Set(['name', 'kind', 'severity', 'allow', 'syscalls']);
      for (const k of Object.keys(rule)) if (!known.has(k)) problems.push(`${at}.${k}: unknown field`);
      const name = typeof rule.name === 'string' && NAME_RE.test(rule.name) ? rule.name : undefined;
      if (!name) problems.push(`${at}.name: must match ${NAME_RE}`);
      else if (names.has(name)) problems.push(`${at}.name: duplicate ${name}`);
      else names.add(name);
      const kind = typeof rule.kind === 'string' && KINDS.has(rule.kind) ? (rule.kind as RuleKind) : undefined;
      if (!kind) problems.push(`${at}.kind: must be one of ${[...KINDS].join(', ')}`);
      const severity = rule.severity === undefined ? 'warning' : typeof rule.severity === 'string' && SEVERITIES.has(rule.severity) ? (rule.severity as Severity) : undefined;
      if (!severity) problems.push(`${at}.severity: must be one of ${[...SEVERITIES].join(', ')}`);
      const out: MonitorRule = { name: name ?? '', kind: kind ?? 'exec', severity: severity ?? 'warning' };
      if (rule.allow !== undefined) {
        if (kind !== 'exec') problems.push(`${at}.allow: only for kind exec`);
        else out.allow = stringList(rule.allow, `${at}.allow`, problems, (s) => s.length <= MAX_PATH && PATH_RE.test(s) && !s.split('/').includes('..') && !s.split('/').includes('.'), `absolute paths of plain characters (at most ${MAX_PATH})`);
      } else if (kind === 'exec') {
        problems.push(`${at}.allow: required for kind exec`);
      }
      if (rule.syscalls !== undefined) {
        if (kind !== 'denied-syscalls') problems.push(`${at}.syscalls: only for kind denied-syscalls`);
        else out.syscalls = stringList(rule.syscalls, `${at}.syscalls`, problems, (s) => SYSCALL_NAMES.has(s), 'syscall names of this architecture');
      }
      rules.push(out);
    });
  }
  if (problems.length > 0) {
    throw new CtError('MONITOR_RULES_INVALID', `${where}: ${problems.join('; ')}`, { path: where, problems });
  }
  return { version: 1, rules };
}

/** Parses and validates YAML rule text (YAML aliases and custom tags are refused). */
export function parseRules(text: string, where = 'security/monitor.yaml'): MonitorRules {
  if (text.length > 256 * 1024) throw new CtError('MONITOR_RULES_INVALID', `${where}: larger than 256 KiB`, { path: where });
  let doc: unknown;
  try {
    doc = parseYaml(text, { maxAliasCount: 0, customTags: [], uniqueKeys: true, strict: true });
  } catch (e) {
    throw new CtError('MONITOR_RULES_INVALID', `${where}: not YAML: ${(e as Error).message.split('\n')[0]}`, { path: where });
  }
  return checkRules(doc, where);
}
