import { hostGoArch, runtimeDefault } from './runtime-default.js';
import { startupSyscalls } from './startup.js';
import { SYSCALLS_X86_64 } from './syscalls-x86_64.js';
import type { OciSeccomp } from './types.js';

/** Syscall number → name for an architecture; undefined when we carry no table for it. */
export function syscallNumberTable(arch = hostGoArch()): ReadonlyMap<number, string> | undefined {
  return arch === 'amd64' ? SYSCALLS_X86_64 : undefined;
}

export function syscallName(nr: number, arch = hostGoArch()): string | undefined {
  return syscallNumberTable(arch)?.get(nr);
}

/**
 * A minimal allow-list profile: the given syscalls plus runc's start-up set, everything else
 * ERRNO(EPERM). The architectures are RuntimeDefault's for this host, so that 32-bit entry points
 * stay filtered rather than unfiltered.
 */
export function allowListProfile(names: Iterable<string>, opts: { arch?: string } = {}): OciSeccomp {
  const all = new Set<string>([...names, ...startupSyscalls(true)]);
  const base = runtimeDefault({ arch: opts.arch });
  const profile: OciSeccomp = { defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1 };
  if (base.architectures) profile.architectures = base.architectures;
  profile.syscalls = [{ names: [...all].sort(), action: 'SCMP_ACT_ALLOW' }];
  return profile;
}
