import { access, readFile, statfs } from 'node:fs/promises';
import { release } from 'node:os';
import { ensureTracingMounts } from './monitor/monitor.js';
import { runTool } from './runtime/tools.js';

import type { HostFacts } from '../src/protocol/messages.js';

/**
 * What this host can enforce (the shape is the protocol's: the server reads it too), reported at
 * every connect and checked before a bundle runs (enforce/requirements.ts). Every fact is
 * measured, never assumed from the distribution.
 */
export type { HostFacts };

const GOARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
const CGROUP2_SUPER_MAGIC = 0x63677270;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function fsMagic(path: string): Promise<number | undefined> {
  try {
    return Number((await statfs(path)).type);
  } catch {
    return undefined;
  }
}

async function runcFacts(): Promise<HostFacts['runc'] & { seccompActions?: string[] }> {
  const v = await runTool('runc', ['--version'], { timeoutMs: 5000 });
  if (v.missing || v.code !== 0) return { present: false };
  const out: HostFacts['runc'] & { seccompActions?: string[] } = { present: true };
  out.version = /runc version (\S+)/.exec(v.stdout)?.[1];
  out.spec = /spec: (\S+)/.exec(v.stdout)?.[1];
  out.libseccomp = /libseccomp: (\S+)/.exec(v.stdout)?.[1];
  const f = await runTool('runc', ['features'], { timeoutMs: 5000 });
  if (f.code === 0) {
    try {
      const feats = JSON.parse(f.stdout) as { linux?: { seccomp?: { enabled?: boolean; actions?: string[] } } };
      if (feats.linux?.seccomp?.enabled) out.seccompActions = feats.linux.seccomp.actions ?? [];
    } catch {
      // `runc features` is experimental in 1.1; its absence only loses the action list.
    }
  }
  return out;
}

/** Where the cgroup v2 hierarchy is mounted: /sys/fs/cgroup (v2) or /sys/fs/cgroup/unified (hybrid). */
export async function cgroupFacts(): Promise<HostFacts['cgroup']> {
  if ((await fsMagic('/sys/fs/cgroup')) === CGROUP2_SUPER_MAGIC) return { version: 'v2', unifiedMount: '/sys/fs/cgroup' };
  if ((await fsMagic('/sys/fs/cgroup/unified')) === CGROUP2_SUPER_MAGIC) return { version: 'hybrid', unifiedMount: '/sys/fs/cgroup/unified' };
  return { version: 'v1' };
}

export async function apparmorFacts(): Promise<HostFacts['apparmor']> {
  const enabled = (await readText('/sys/module/apparmor/parameters/enabled'))?.trim() === 'Y';
  const securityfs = await exists('/sys/kernel/security/apparmor');
  const parser = !(await runTool('apparmor_parser', ['--version'], { timeoutMs: 5000 })).missing;
  const present = enabled || securityfs;
  const enforcing = enabled && securityfs;
  const reason = enforcing
    ? undefined
    : !enabled
      ? 'kernel has no AppArmor (/sys/module/apparmor/parameters/enabled missing or not Y)'
      : 'securityfs not mounted (/sys/kernel/security/apparmor missing)';
  return { present, enforcing, parser, reason };
}

/** SELinux as the kernel reports it: selinuxfs mounted, and `enforce` reading 1. */
export async function selinuxFacts(): Promise<NonNullable<HostFacts['selinux']>> {
  const enforce = (await readText('/sys/fs/selinux/enforce'))?.trim();
  if (enforce === undefined) return { present: false, enforcing: false, reason: 'kernel has no SELinux (/sys/fs/selinux/enforce missing)' };
  return enforce === '1' ? { present: true, enforcing: true } : { present: true, enforcing: false, reason: 'SELinux is permissive' };
}

export async function ebpfFacts(): Promise<HostFacts['ebpf']> {
  const tracefs = (await exists('/sys/kernel/tracing/events/raw_syscalls')) || (await exists('/sys/kernel/debug/tracing/events/raw_syscalls'));
  const bpffs = (await fsMagic('/sys/fs/bpf')) === 0xcafe4a11;
  const v = await runTool('bpftrace', ['--version'], { timeoutMs: 5000 });
  const bpftrace = !v.missing && v.code === 0;
  const out: HostFacts['ebpf'] = { tracefs, bpffs, bpftrace, usable: tracefs && bpftrace };
  if (bpftrace) out.bpftraceVersion = /v?(\d+\.\d+\.\d+)/.exec(v.stdout)?.[1];
  return out;
}

/**
 * Measures the host. With `mountTracing`, first mounts tracefs and bpffs when missing (what the
 * monitor would do at start-up), so that a root agent does not report eBPF as unusable only
 * because nobody mounted them yet.
 */
export async function collectFacts(opts: { mountTracing?: boolean } = {}): Promise<HostFacts> {
  if (opts.mountTracing) await ensureTracingMounts().catch(() => undefined);
  const [runc, apparmor, ebpf, cgroup, status, actions, maxNs, selinux] = await Promise.all([
    runcFacts(),
    apparmorFacts(),
    ebpfFacts(),
    cgroupFacts(),
    readText('/proc/self/status'),
    readText('/proc/sys/kernel/seccomp/actions_avail'),
    readText('/proc/sys/user/max_user_namespaces'),
    selinuxFacts(),
  ]);
  const seccompField = status !== undefined && /^Seccomp:\s/m.test(status);
  const { seccompActions, ...runcOut } = runc;
  const max = Number(maxNs?.trim() ?? 0) || 0;
  return {
    kernel: release(),
    architecture: GOARCH[process.arch] ?? process.arch,
    runc: runcOut,
    seccomp: {
      available: seccompField && (seccompActions !== undefined ? seccompActions.length > 0 : true),
      actions: seccompActions ?? (actions?.trim().split(/\s+/) ?? []),
    },
    apparmor,
    selinux,
    ebpf,
    cgroup,
    userNamespaces: { available: max > 0, max },
  };
}
