import type { PolicySet } from './policy-set.js';
import type { Decision } from './types.js';

/**
 * What the policies that allowed a bundle say of seccomp: required when any applying policy has a
 * `runtime.seccomp` section, and the syscalls beyond RuntimeDefault a bundle's profile may let
 * through (only those every such policy lists). One rule for a host (host/agent/grants.ts) and
 * for Kubernetes admission (src/k8s/seccomp-check.ts).
 */
export function seccompGrant(set: PolicySet, decision: Decision): { required: boolean; extras: string[] } {
  let extras: Set<string> | undefined;
  for (const name of decision.policies) {
    const r = set.get(name)?.runtime?.seccomp;
    if (r) extras = extras ? new Set([...extras].filter((s) => r.extraSyscalls.has(s))) : new Set(r.extraSyscalls);
  }
  return { required: extras !== undefined, extras: [...(extras ?? [])].sort() };
}
