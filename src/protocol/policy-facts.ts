import type { HostFacts as PolicyHostFacts } from '../policy/types.js';
import type { HostFacts } from './messages.js';

/**
 * The facts of a host as the policy engine reads them, for one target environment. Facts a host
 * stored at enrolment are any JSON object (the hub checks a hello's, hostFactsProblem; enrolment
 * does not): what is missing or of another type reads as not available, never as a TypeError.
 */
export function policyHostFacts(f: HostFacts | undefined, environment: string): PolicyHostFacts {
  if (!f) return { environment };
  const g = f as Partial<HostFacts>;
  return {
    environment,
    seccomp: g.seccomp?.available === true,
    apparmor: { present: g.apparmor?.present === true, enforcing: g.apparmor?.enforcing === true },
    selinux: { present: g.selinux?.present === true, enforcing: g.selinux?.enforcing === true },
    ebpf: g.ebpf?.usable === true,
    ...(typeof g.cgroup?.version === 'string' ? { cgroup: g.cgroup.version } : {}),
    ...(typeof g.architecture === 'string' ? { arch: g.architecture } : {}),
  };
}
