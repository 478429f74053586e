import type { HostFacts } from './messages.js';

/**
 * What is wrong with a host's facts as they came over the wire (a hello), or undefined when they
 * have the shape messages.ts gives them. The server judges policies on them (policy-facts.ts) for
 * every deploy to the host's environment: facts without `seccomp`, `apparmor`, `ebpf` or `cgroup`
 * made that a TypeError, so one host, broken or compromised, failed every deploy and promotion of
 * its environment before anything reached the other hosts. Only types and sizes are checked: what
 * a host says it can enforce is its own word.
 */
/** The longest optional string of the facts (a version, a reason, a mount point); real ones are far shorter. */
const MAX_FACT_TEXT = 256;

export function hostFactsProblem(v: unknown): string | undefined {
  const obj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  const bool = (x: unknown) => typeof x === 'boolean';
  const text = (x: unknown, max: number) => typeof x === 'string' && x.length <= max;
  if (!obj(v)) return 'are not an object';
  const f = v as Partial<Record<keyof HostFacts, unknown>>;
  // The optional strings (versions, reasons, a mount point) may be absent or null, else short.
  const optText = (x: unknown) => x === undefined || x === null || text(x, MAX_FACT_TEXT);
  if (!text(f.kernel, 256) || !text(f.architecture, 32)) return 'kernel and architecture must be short strings';
  if (!obj(f.runc) || !bool(f.runc.present)) return 'runc.present must be a boolean';
  const long = ([['runc.version', f.runc.version], ['runc.spec', f.runc.spec], ['runc.libseccomp', f.runc.libseccomp],
    ['apparmor.reason', obj(f.apparmor) ? f.apparmor.reason : undefined], ['selinux.reason', obj(f.selinux) ? f.selinux.reason : undefined],
    ['ebpf.bpftraceVersion', obj(f.ebpf) ? f.ebpf.bpftraceVersion : undefined], ['cgroup.unifiedMount', obj(f.cgroup) ? f.cgroup.unifiedMount : undefined]] as const)
    .find(([, x]) => !optText(x));
  if (long) return `${long[0]} must be a string of at most ${MAX_FACT_TEXT} characters`;
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

/**
 * The facts the server keeps of a hello that passed hostFactsProblem: the fields messages.ts
 * names and nothing else. A host's extra fields (up to the 1 MiB frame) were stored in
 * `hosts.facts` and returned by every `GET /api/v1/hosts`.
 */
export function knownHostFacts(v: HostFacts): HostFacts {
  const b = (x: unknown) => x === true;
  const t = (x: unknown) => (typeof x === 'string' ? x : undefined);
  const some = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;
  const { kernel, architecture, runc, seccomp, apparmor, selinux, ebpf, cgroup, userNamespaces } = v;
  return {
    kernel, architecture,
    runc: some({ present: runc.present, version: t(runc.version), spec: t(runc.spec), libseccomp: t(runc.libseccomp) }),
    seccomp: { available: seccomp.available, actions: [...seccomp.actions] },
    apparmor: some({ present: apparmor.present, enforcing: apparmor.enforcing, parser: b(apparmor.parser), reason: t(apparmor.reason) }),
    ...(selinux ? { selinux: some({ present: selinux.present, enforcing: selinux.enforcing, reason: t(selinux.reason) }) } : {}),
    ebpf: some({ tracefs: b(ebpf.tracefs), bpffs: b(ebpf.bpffs), bpftrace: b(ebpf.bpftrace), bpftraceVersion: t(ebpf.bpftraceVersion), usable: ebpf.usable }),
    cgroup: some({ version: cgroup.version, unifiedMount: t(cgroup.unifiedMount) }),
    userNamespaces: { available: userNamespaces.available, max: userNamespaces.max },
  };
}
