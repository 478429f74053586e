/**
 * The `runtime` section of a policy against what the bundle asks for (manifest `[runtime]`, its
 * security/ files) and what the target host can enforce.
 */
import { judgeAppArmor } from './apparmor.js';
import { normaliseCapability } from './compile.js';
import { judgeSeccompFor } from './seccomp.js';
import type { BundleFacts, HostFacts, RuntimeRules, Violation } from './types.js';

type Raw = Omit<Violation, 'policy' | 'mode'>;

const ROOT_USER = /^(root|0)(:.*)?$/;

/** The files runtime rules read: the manifest and the security/ files it has (evaluate.ts checks who covered them). */
export function runtimeFiles(bundle: BundleFacts): string[] {
  const sec = bundle.security ?? {};
  return ['manifest.toml', ...(sec.seccomp !== undefined ? ['security/seccomp.json'] : []), ...(sec.apparmor !== undefined ? ['security/apparmor'] : []), ...(sec.selinux !== undefined ? ['security/selinux/policy.cil'] : []), ...(sec.monitor ? ['security/monitor.yaml'] : [])];
}

export function checkRuntime(r: RuntimeRules, bundle: BundleFacts, host: HostFacts): Raw[] {
  const out: Raw[] = [];
  const rt = bundle.runtime ?? {};
  const sec = bundle.security ?? {};

  if (rt.privileged === true && !r.allowPrivileged) {
    out.push({ code: 'PRIVILEGED', rule: 'runtime.allowPrivileged', message: 'the bundle asks to run privileged; policies never allow that unless runtime.allowPrivileged is true', evidence: { privileged: true }, at: r.at });
  }
  // Normalised once; most evaluations allocate nothing else when every rule holds.
  const caps = Array.isArray(rt.capabilities) ? rt.capabilities.map((c) => normaliseCapability(String(c))) : undefined;
  if (r.capabilities && caps && caps.some((c) => !r.capabilities!.allowed.has(c))) {
    const refused = [...new Set(caps.filter((c) => !r.capabilities!.allowed.has(c)))].sort();
    if (refused.length) out.push({ code: 'CAPABILITY_NOT_ALLOWED', rule: 'runtime.capabilities', message: `capabilities not allowed: ${refused.slice(0, 16).join(', ')}`, evidence: { capabilities: refused.slice(0, 64), allowed: [...r.capabilities.allowed].sort() }, at: r.capabilities.at });
  }
  if (r.nonRoot) {
    const user = typeof rt.user === 'string' ? rt.user.trim() : '';
    if (!user || ROOT_USER.test(user)) out.push({ code: 'RUNS_AS_ROOT', rule: 'runtime.nonRoot', message: user ? `runs as ${user.slice(0, 64)}` : 'the manifest names no user, so the image default (often root) applies', evidence: { user: user.slice(0, 64) || null }, at: r.nonRoot });
  }
  if (r.readOnlyRootfs && rt.read_only_rootfs !== true) {
    out.push({ code: 'ROOTFS_WRITABLE', rule: 'runtime.readOnlyRootfs', message: 'the manifest does not set read_only_rootfs = true', evidence: { read_only_rootfs: rt.read_only_rootfs ?? null }, at: r.readOnlyRootfs });
  }
  if (r.resources) out.push(...checkResources(r.resources, rt.resources));
  if (r.seccomp) {
    if (host.seccomp !== true) out.push({ code: 'HOST_SECCOMP_UNAVAILABLE', rule: 'runtime.seccomp', message: `host (${host.environment}) cannot enforce seccomp`, evidence: { hostSeccomp: host.seccomp ?? null }, at: r.seccomp.at });
    if (sec.seccomp === undefined) {
      if (r.seccomp.level === 'confining') out.push({ code: 'SECCOMP_REQUIRED', rule: 'runtime.seccomp', message: 'the bundle ships no security/seccomp.json and the policy requires a confining profile', evidence: {}, at: r.seccomp.at });
    } else {
      for (const f of judgeSeccompFor(sec.seccomp, r.seccomp, host.arch, caps)) out.push({ ...f, rule: 'runtime.seccomp', at: r.seccomp.at });
    }
  }
  if (r.apparmor) {
    if (sec.apparmor === undefined) out.push({ code: 'APPARMOR_REQUIRED', rule: 'runtime.apparmor', message: 'the bundle ships no security/apparmor profile', evidence: {}, at: r.apparmor.at });
    else {
      const found = judgeAppArmor(sec.apparmor);
      if (found.length) out.push({ code: 'APPARMOR_UNCONFINED', rule: 'runtime.apparmor', message: `profile does not confine: ${found[0].reason}${found[0].line ? ` (line ${found[0].line}: ${found[0].text})` : ''}`, evidence: { findings: found.slice(0, 8) }, at: r.apparmor.at });
    }
    if (host.apparmor?.enforcing !== true && !r.apparmor.allowUnenforcedHost) {
      out.push({ code: 'HOST_APPARMOR_NOT_ENFORCING', rule: 'runtime.apparmor', message: `host (${host.environment}) does not enforce AppArmor`, evidence: { hostApparmor: host.apparmor ?? null }, at: r.apparmor.at });
    }
  }
  if (r.selinux) {
    if (sec.selinux === undefined) out.push({ code: 'SELINUX_REQUIRED', rule: 'runtime.selinux', message: 'the bundle ships no security/selinux/policy.cil', evidence: {}, at: r.selinux.at });
    if (host.selinux?.enforcing !== true) {
      out.push({ code: 'HOST_SELINUX_UNAVAILABLE', rule: 'runtime.selinux', message: `host (${host.environment}) does not enforce SELinux`, evidence: { hostSelinux: host.selinux ?? null }, at: r.selinux.at });
    }
  }
  if (r.monitoring) {
    if (!sec.monitor) out.push({ code: 'MONITORING_REQUIRED', rule: 'runtime.monitoring', message: 'the bundle ships no security/monitor.yaml', evidence: {}, at: r.monitoring.at });
    if (host.ebpf !== true) out.push({ code: 'HOST_EBPF_UNAVAILABLE', rule: 'runtime.monitoring', message: `host (${host.environment}) has no eBPF monitoring`, evidence: { hostEbpf: host.ebpf ?? null }, at: r.monitoring.at });
  }
  return out;
}

const RESOURCE_UNITS: Record<'memory' | 'cpus' | 'pids', string> = { memory: 'bytes', cpus: 'CPUs', pids: 'processes' };

/** A bundle asking more than the environment's limit is denied, naming the limit and the ask. */
function checkResources(limits: NonNullable<RuntimeRules['resources']>, ask: unknown): Raw[] {
  const out: Raw[] = [];
  const a = (ask && typeof ask === 'object' ? ask : {}) as Record<string, unknown>;
  for (const k of ['memory', 'cpus', 'pids'] as const) {
    const limit = limits[k];
    const want = a[k];
    if (limit === undefined || typeof want !== 'number' || want <= limit) continue;
    out.push({
      code: 'RESOURCE_LIMIT_EXCEEDED', rule: `runtime.resources.${k}`,
      message: `the bundle asks for ${k} = ${want} ${RESOURCE_UNITS[k]}, above this environment's limit of ${limit}`,
      evidence: { resource: k, asked: want, limit }, at: limits.at,
    });
  }
  return out;
}
