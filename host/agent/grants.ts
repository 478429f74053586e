import type { PolicySet } from '../../src/policy/policy-set.js';
import type { Decision, Egress } from '../../src/policy/types.js';
import { seccompGrant } from '../../src/policy/seccomp-grant.js';
import { capabilitiesAllowed } from '../../src/policy/capability-grant.js';
import type { RuntimeGrants } from '../enforce/types.js';

/**
 * What the policies that allowed a bundle grant it at run time. Several policies may apply:
 * requirements add up (any policy requiring seccomp/AppArmor/monitoring requires it) and
 * permissions intersect (a capability is granted only if every policy with a capability list
 * allows it). Root is granted only when every applying policy has a runtime section and none
 * asks for non-root; the default is rootless.
 */
export function runtimeGrants(set: PolicySet, decision: Decision): RuntimeGrants {
  const rules = decision.policies.map((n) => set.get(n)?.runtime);
  const present = rules.filter((r): r is NonNullable<typeof r> => Boolean(r));
  // Resource limits: the smallest of the applying policies' (each one is a ceiling).
  const limits: NonNullable<RuntimeGrants['limits']> = {};
  const lower = (to: keyof typeof limits, v: number | undefined) => {
    if (v !== undefined && (limits[to] === undefined || v < limits[to]!)) limits[to] = v;
  };
  for (const r of present) {
    lower('memoryBytes', r.resources?.memory);
    lower('cpus', r.resources?.cpus);
    lower('pids', r.resources?.pids);
  }
  const seccomp = seccompGrant(set, decision);
  return {
    seccomp: seccomp.required ? 'required' : 'optional',
    apparmor: present.some((r) => r.apparmor && !r.apparmor.allowUnenforcedHost) ? 'required' : 'optional',
    monitoring: present.some((r) => r.monitoring) ? 'required' : 'optional',
    selinux: present.some((r) => r.selinux) ? 'required' : 'optional',
    // The rule Kubernetes admission applies too (src/policy/capability-grant.ts).
    capabilitiesAllowed: capabilitiesAllowed(set, decision),
    allowRoot: rules.length > 0 && present.length === rules.length && !present.some((r) => r.nonRoot),
    seccompExtras: seccomp.extras,
    limits,
    network: {
      publish: present.filter((r) => r.network).map((r) => r.network!.publish),
      egress: narrowest(present.map((r) => r.network?.egress).filter((e): e is Egress => e !== undefined)),
    },
  };
}

const EGRESS_ORDER: readonly Egress[] = ['none', 'environment', 'any'];

/** The narrowest egress the policies name; none named: `none` (nothing beyond the environment). */
function narrowest(named: Egress[]): Egress {
  return named.length === 0 ? 'none' : EGRESS_ORDER[Math.min(...named.map((e) => EGRESS_ORDER.indexOf(e)))];
}
