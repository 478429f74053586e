import { hostGoArch, runtimeDefault } from './runtime-default.js';
import { startupSyscalls } from './startup.js';
import { SYSCALLS_X86_64 } from './syscalls-x86_64.js';
import { passedSyscalls } from './analyze.js';
import type { OciSeccomp, SeccompRule } from './types.js';

/** Syscall number → name for an architecture; undefined when we carry no table for it. */
export function syscallNumberTable(arch = hostGoArch()): ReadonlyMap<number, string> | undefined {
  return arch === 'amd64' ? SYSCALLS_X86_64 : undefined;
}

export function syscallName(nr: number, arch = hostGoArch()): string | undefined {
  return syscallNumberTable(arch)?.get(nr);
}

/**
 * A minimal allow-list profile: the given syscalls plus runc's start-up set, everything else
 * ERRNO(EPERM). A syscall RuntimeDefault allows only for some arguments (clone without namespace
 * flags, socket families, personality) keeps RuntimeDefault's argument conditions, so a recorded
 * profile never allows more than RuntimeDefault for the same capabilities. The architectures are
 * RuntimeDefault's for this host, so that 32-bit entry points stay filtered.
 */
export function allowListProfile(names: Iterable<string>, opts: { arch?: string; capabilities?: readonly string[] } = {}): OciSeccomp {
  const all = new Set<string>([...names, ...startupSyscalls(true)]);
  const base = runtimeDefault({ arch: opts.arch, capabilities: opts.capabilities ?? [] });
  const passed = passedSyscalls(base);
  const plain: string[] = [];
  const conditional: SeccompRule[] = [];
  for (const name of [...all].sort()) {
    const entry = passed.get(name);
    if (entry && !entry.unconditional) {
      for (const r of entry.rules) conditional.push({ names: [name], action: r.action, ...(r.args ? { args: r.args.map((a) => ({ ...a })) } : {}) });
    } else {
      plain.push(name);
    }
  }
  const profile: OciSeccomp = { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1 };
  if (base.architectures) profile.architectures = base.architectures;
  profile.syscalls = [{ names: plain, action: 'SCMP_ACT_ALLOW' }, ...conditional];
  return profile;
}
