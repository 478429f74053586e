/**
 * "seccomp required" means a profile that actually confines (SPEC §7): the default action is ERRNO
 * or KILL*, no syscall is handed to a user-space notify listener unless the policy allows it, no
 * SPEC_ALLOW flag unless allowed, and every syscall the profile lets through is one RuntimeDefault
 * lets through (for the same architecture and capabilities) or one of the policy's extras.
 * RuntimeDefault comes from src/profiles/seccomp (moby's profile resolved to OCI form).
 */
import { runtimeDefault } from '../profiles/seccomp/runtime-default.js';
import type { SeccompRule } from '../profiles/seccomp/types.js';

const CONFINING_DEFAULTS = new Set(['SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD']);
/** Actions that let the syscall run (LOG allows and logs; TRACE runs it when no tracer objects). */
const LETS_THROUGH = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE']);
const MAX_RULES = 4096;
const MAX_NAMES = 16384;

/** Judged against the newest kernel, so the answer does not depend on the machine evaluating it. */
const JUDGE_KERNEL = '255.0';
const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', x64: 'amd64', aarch64: 'arm64', i386: '386', i686: '386' };

const allowedCache = new Map<string, Set<string>>();

export function runtimeDefaultAllowed(arch: string | undefined, capabilities: readonly string[] | undefined): Set<string> {
  const goArch = ARCH_ALIASES[arch ?? ''] ?? arch ?? 'amd64';
  const caps = capabilities ? [...new Set(capabilities)].sort() : undefined;
  const key = `${goArch}|${caps?.join(',') ?? '(docker default)'}`;
  let set = allowedCache.get(key);
  if (!set) {
    set = new Set<string>();
    for (const rule of runtimeDefault({ arch: goArch, capabilities: caps, kernel: JUDGE_KERNEL }).syscalls ?? []) {
      if (rule.action === 'SCMP_ACT_ALLOW') for (const n of rule.names) set.add(n);
    }
    allowedCache.set(key, set);
  }
  return set;
}

export interface SeccompFinding {
  code: 'SECCOMP_NOT_CONFINING' | 'SECCOMP_NOTIFY' | 'SECCOMP_SPEC_ALLOW' | 'SECCOMP_SYSCALL_NOT_ALLOWED';
  message: string;
  evidence: Record<string, unknown>;
}

export interface SeccompJudgeOptions {
  allowNotify: boolean;
  allowSpecAllow: boolean;
  extraSyscalls: Set<string>;
  arch?: string;
  capabilities?: readonly string[];
}

// Judging a profile is pure: remember the answer per profile object and per rule/arch/capabilities,
// so re-evaluating the same deployment (policy diffs, the server's periodic re-checks) is cheap.
// Evidence and bundle facts are treated as immutable once handed to the engine.
const judged = new WeakMap<object, Map<string, SeccompFinding[]>>();
const ruleIds = new WeakMap<object, number>();
let nextRuleId = 1;

/** The rule part of the options: what a policy's runtime.seccomp says. */
export type SeccompRuleOptions = Pick<SeccompJudgeOptions, 'allowNotify' | 'allowSpecAllow' | 'extraSyscalls'>;

/**
 * Judges `profile` for a policy rule, an architecture and a capability set, memoised per profile
 * object and (rule object, arch, capabilities): the options object is built only on a miss.
 */
export function judgeSeccompFor(profile: unknown, rule: SeccompRuleOptions, arch: string | undefined, capabilities: readonly string[] | undefined): SeccompFinding[] {
  if (!profile || typeof profile !== 'object') return judgeSeccomp(profile, { ...rule, arch, capabilities });
  let rid = ruleIds.get(rule);
  if (rid === undefined) ruleIds.set(rule, (rid = nextRuleId++));
  const key = capabilities ? `${rid}|${arch ?? ''}|${capabilities.join(',')}` : `${rid}|${arch ?? ''}|-`;
  let byKey = judged.get(profile);
  if (!byKey) judged.set(profile, (byKey = new Map()));
  let out = byKey.get(key);
  if (!out) {
    out = judgeSeccomp(profile, { ...rule, arch, capabilities });
    if (byKey.size < 64) byKey.set(key, out);
  }
  return out;
}

/** Everything wrong with a profile, in a fixed order; empty when it confines. */
export function judgeSeccomp(profile: unknown, opts: SeccompJudgeOptions): SeccompFinding[] {
  if (!profile || typeof profile !== 'object' || Array.isArray(profile)) {
    return [{ code: 'SECCOMP_NOT_CONFINING', message: 'security/seccomp.json is not an OCI linux.seccomp object', evidence: {} }];
  }
  const p = profile as { defaultAction?: unknown; flags?: unknown; listenerPath?: unknown; syscalls?: unknown };
  const out: SeccompFinding[] = [];
  if (typeof p.defaultAction !== 'string' || !CONFINING_DEFAULTS.has(p.defaultAction)) {
    out.push({ code: 'SECCOMP_NOT_CONFINING', message: `default action ${String(p.defaultAction).slice(0, 64)} lets unlisted syscalls run; use SCMP_ACT_ERRNO or SCMP_ACT_KILL*`, evidence: { defaultAction: String(p.defaultAction).slice(0, 64) } });
  }
  const flags = Array.isArray(p.flags) ? p.flags.map(String) : [];
  if (flags.includes('SECCOMP_FILTER_FLAG_SPEC_ALLOW') && !opts.allowSpecAllow) {
    out.push({ code: 'SECCOMP_SPEC_ALLOW', message: 'flag SECCOMP_FILTER_FLAG_SPEC_ALLOW turns off the speculative store bypass mitigation', evidence: { flags } });
  }
  const rules = p.syscalls === undefined ? [] : p.syscalls;
  if (!Array.isArray(rules) || rules.length > MAX_RULES) {
    out.push({ code: 'SECCOMP_NOT_CONFINING', message: 'syscalls is not a list of rules (or too long)', evidence: {} });
    return out;
  }
  const notifyNames: string[] = [];
  const letThrough = new Set<string>();
  let names = 0;
  for (const r of rules as SeccompRule[]) {
    if (!r || typeof r !== 'object' || !Array.isArray(r.names) || typeof r.action !== 'string') {
      out.push({ code: 'SECCOMP_NOT_CONFINING', message: 'a syscall rule has no names or action', evidence: {} });
      return out;
    }
    names += r.names.length;
    if (names > MAX_NAMES) {
      out.push({ code: 'SECCOMP_NOT_CONFINING', message: 'profile names too many syscalls', evidence: {} });
      return out;
    }
    if (r.action === 'SCMP_ACT_NOTIFY') notifyNames.push(...r.names.map(String));
    else if (LETS_THROUGH.has(r.action)) for (const n of r.names) letThrough.add(String(n));
  }
  if ((notifyNames.length > 0 || p.listenerPath !== undefined) && !opts.allowNotify) {
    out.push({ code: 'SECCOMP_NOTIFY', message: 'syscalls go to a user-space notify listener, which decides instead of the kernel', evidence: { syscalls: notifyNames.slice(0, 32), listenerPath: typeof p.listenerPath === 'string' ? p.listenerPath.slice(0, 256) : undefined } });
  }
  const baseline = runtimeDefaultAllowed(opts.arch, opts.capabilities);
  const extra = [...letThrough].filter((n) => !baseline.has(n) && !opts.extraSyscalls.has(n)).sort();
  if (extra.length) {
    out.push({ code: 'SECCOMP_SYSCALL_NOT_ALLOWED', message: `profile allows syscalls RuntimeDefault refuses: ${extra.slice(0, 16).join(', ')}${extra.length > 16 ? ', …' : ''}`, evidence: { syscalls: extra.slice(0, 64), count: extra.length } });
  }
  return out;
}
