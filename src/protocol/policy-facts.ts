import type { HostFacts as PolicyHostFacts } from '../policy/types.js';
import type { HostFacts } from './messages.js';

/** The facts of a host as the policy engine reads them, for one target environment. */
export function policyHostFacts(f: HostFacts | undefined, environment: string): PolicyHostFacts {
  if (!f) return { environment };
  return {
    environment,
    seccomp: f.seccomp.available,
    apparmor: { present: f.apparmor.present, enforcing: f.apparmor.enforcing },
    selinux: { present: f.selinux?.present ?? false, enforcing: f.selinux?.enforcing ?? false },
    ebpf: f.ebpf.usable,
    cgroup: f.cgroup.version,
    arch: f.architecture,
  };
}
