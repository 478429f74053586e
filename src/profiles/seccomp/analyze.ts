import type { OciSeccomp, SeccompAction, SeccompRule } from './types.js';

/** Actions that let a syscall reach the kernel (TRACE does when a tracer is attached; NOTIFY when a listener says so). */
const PASSES: ReadonlySet<SeccompAction> = new Set(['SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_TRACE', 'SCMP_ACT_NOTIFY']);

export function actionPasses(action: SeccompAction): boolean {
  return PASSES.has(action);
}

/**
 * Names a profile lets through, each with whether it is let through unconditionally (a rule
 * without args) or only for some argument values. When the default action passes, everything
 * passes: callers check `defaultAction` first.
 */
export function passedSyscalls(profile: OciSeccomp): Map<string, { unconditional: boolean; rules: SeccompRule[] }> {
  const out = new Map<string, { unconditional: boolean; rules: SeccompRule[] }>();
  for (const rule of profile.syscalls ?? []) {
    if (!actionPasses(rule.action)) continue;
    for (const name of rule.names) {
      const entry = out.get(name) ?? { unconditional: false, rules: [] };
      entry.rules.push(rule);
      if (!rule.args || rule.args.length === 0) entry.unconditional = true;
      out.set(name, entry);
    }
  }
  return out;
}

/** True when `name` is allowed for every argument value (what a start-up syscall needs). */
export function allowsUnconditionally(profile: OciSeccomp, name: string): boolean {
  if (actionPasses(profile.defaultAction)) return true;
  return passedSyscalls(profile).get(name)?.unconditional === true;
}
