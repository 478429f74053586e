import { actionPasses, passedSyscalls } from './analyze.js';
import { runtimeDefault, type ResolveOptions } from './runtime-default.js';
import type { OciSeccomp, SeccompArg } from './types.js';

/** Why a profile does not confine (SPEC §7 "seccomp required"); stable names for policy reports. */
export type ConfinementProblem =
  | 'DEFAULT_ACTION_ALLOWS' // default action is not ERRNO or KILL*
  | 'NOTIFY_LISTENER' // SCMP_ACT_NOTIFY rule or listenerPath: a user-space agent decides
  | 'SPEC_ALLOW' // SECCOMP_FILTER_FLAG_SPEC_ALLOW turns off speculative-execution mitigation
  | 'OUTSIDE_RUNTIME_DEFAULT'; // lets through a syscall (or argument values) RuntimeDefault denies

export interface ConfinesOptions extends ResolveOptions {
  /** Syscalls the policy allows beyond RuntimeDefault. */
  extras?: readonly string[];
  /** Policy allows SCMP_ACT_NOTIFY / a listener. */
  allowNotify?: boolean;
  /** Policy allows SECCOMP_FILTER_FLAG_SPEC_ALLOW. */
  allowSpecAllow?: boolean;
}

export interface ConfinementReport {
  confines: boolean;
  problems: ConfinementProblem[];
  /** Syscalls let through that RuntimeDefault (plus extras) does not let through the same way. */
  outside: string[];
}

const DENYING_DEFAULTS = new Set(['SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD']);

function sameArgs(a: SeccompArg[] | undefined, b: SeccompArg[] | undefined): boolean {
  const norm = (x: SeccompArg[] | undefined) =>
    JSON.stringify((x ?? []).map((y) => [y.index, y.value, y.valueTwo ?? 0, y.op]));
  return norm(a) === norm(b);
}

/**
 * Does `profile` actually confine (SPEC §7)? Default action ERRNO or KILL; no notify listener or
 * SPEC_ALLOW unless the policy allows them; every syscall it lets through is one RuntimeDefault lets
 * through (for a conditional rule: RuntimeDefault allows that name unconditionally, or with exactly
 * the same argument conditions), unless the policy lists it in `extras`.
 */
export function confines(profile: OciSeccomp, opts: ConfinesOptions = {}): ConfinementReport {
  const problems = new Set<ConfinementProblem>();
  if (!DENYING_DEFAULTS.has(profile.defaultAction)) problems.add('DEFAULT_ACTION_ALLOWS');
  const notify = profile.listenerPath !== undefined || (profile.syscalls ?? []).some((r) => r.action === 'SCMP_ACT_NOTIFY');
  if (notify && !opts.allowNotify) problems.add('NOTIFY_LISTENER');
  if ((profile.flags ?? []).includes('SECCOMP_FILTER_FLAG_SPEC_ALLOW') && !opts.allowSpecAllow) problems.add('SPEC_ALLOW');

  const baseline = passedSyscalls(runtimeDefault(opts));
  const extras = new Set(opts.extras ?? []);
  const outside: string[] = [];
  if (!actionPasses(profile.defaultAction)) {
    for (const [name, entry] of passedSyscalls(profile)) {
      if (extras.has(name)) continue;
      const base = baseline.get(name);
      const covered =
        !!base &&
        (base.unconditional ||
          (!entry.unconditional && entry.rules.every((r) => base.rules.some((b) => sameArgs(r.args, b.args)))));
      if (!covered) outside.push(name);
    }
  }
  if (outside.length > 0) problems.add('OUTSIDE_RUNTIME_DEFAULT');
  return { confines: problems.size === 0, problems: [...problems], outside: outside.sort() };
}
