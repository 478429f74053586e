import type { HostFacts } from './messages.js';

/**
 * What is wrong with a host's facts as they came over the wire (a hello), or undefined when they
 * have the shape messages.ts gives them. The server judges policies on them (policy-facts.ts) for
 * every deploy to the host's environment: facts without `seccomp`, `apparmor`, `ebpf` or `cgroup`
 * made that a TypeError, so one host, broken or compromised, failed every deploy and promotion of
 * its environment before anything reached the other hosts. Only types and sizes are checked: what
 * a host says it can enforce is its own word.
 */
export function hostFactsProblem(v: unknown): string | undefined {
  const obj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  const bool = (x: unknown) => typeof x === 'boolean';
  const text = (x: unknown, max: number) => typeof x === 'string' && x.length <= max;
  if (!obj(v)) return 'are not an object';
  const f = v as Partial<Record<keyof HostFacts, unknown>>;
  if (!text(f.kernel, 256) || !text(f.architecture, 32)) return 'kernel and architecture must be short strings';
  if (!obj(f.runc) || !bool(f.runc.present)) return 'runc.present must be a boolean';
  if (!obj(f.seccomp) || !bool(f.seccomp.available) || !Array.isArray(f.seccomp.actions) || f.seccomp.actions.length > 64 || !f.seccomp.actions.every((a) => text(a, 64))) {
    return 'seccomp must have available (boolean) and actions (at most 64 short strings)';
  }
  if (!obj(f.apparmor) || !bool(f.apparmor.present) || !bool(f.apparmor.enforcing)) return 'apparmor must have present and enforcing (booleans)';
  if (f.selinux !== undefined && (!obj(f.selinux) || !bool(f.selinux.present) || !bool(f.selinux.enforcing))) return 'selinux must have present and enforcing (booleans)';
  if (!obj(f.ebpf) || !bool(f.ebpf.usable)) return 'ebpf.usable must be a boolean';
  if (!obj(f.cgroup) || !['v1', 'v2', 'hybrid'].includes(f.cgroup.version as string)) return 'cgroup.version must be v1, v2 or hybrid';
  if (!obj(f.userNamespaces) || !bool(f.userNamespaces.available) || typeof f.userNamespaces.max !== 'number') return 'userNamespaces must have available (boolean) and max (number)';
  return undefined;
}
