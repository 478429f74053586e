import { CtError } from '../../src/core/errors.js';
import type { HostFacts } from '../facts.js';
import type { RuntimeGrants } from './types.js';

/**
 * Refuses, before anything is unpacked or started, a bundle whose policy requires what this host
 * cannot enforce. Each reason names the fact that failed, so the server can show the operator why
 * (and route the bundle to a host that can).
 */
export function assertHostCanEnforce(grants: RuntimeGrants, facts: HostFacts): void {
  if (grants.selinux === 'required' && !facts.selinux?.enforcing) {
    throw new CtError('HOST_SELINUX_UNAVAILABLE', `the policy requires SELinux and this host does not enforce it: ${facts.selinux?.reason ?? 'no SELinux facts'}`, { selinux: facts.selinux ?? null });
  }
  const reasons: string[] = [];
  if (!facts.runc.present) reasons.push('runc is not installed');
  if (grants.seccomp === 'required' && !facts.seccomp.available) reasons.push('seccomp required: kernel or runc without seccomp');
  if (grants.apparmor === 'required' && !facts.apparmor.enforcing) {
    reasons.push(`AppArmor required: ${facts.apparmor.reason ?? 'not enforcing on this host'}`);
  }
  if (grants.monitoring === 'required' && !facts.ebpf.usable) {
    reasons.push(`monitoring required: ${!facts.ebpf.bpftrace ? 'bpftrace not installed' : 'tracefs not mounted'}`);
  }
  if (reasons.length > 0) {
    throw new CtError('HOST_CANNOT_ENFORCE', `this host cannot enforce what the policy requires: ${reasons.join('; ')}`, { reasons });
  }
}
