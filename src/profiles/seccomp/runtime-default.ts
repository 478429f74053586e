import { release } from 'node:os';
import { MOBY_DEFAULT } from './moby-default.js';
import type { DockerFilter, DockerSeccompProfile, OciSeccomp, SeccompRule } from './types.js';

/**
 * Docker's capability set for a container without --cap-add (moby oci/caps/defaults.go). The
 * profile's `includes.caps` rules are resolved against the capabilities a container is granted;
 * when the caller does not say, this is the set RuntimeDefault is defined for.
 */
export const DOCKER_DEFAULT_CAPS: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** Node's process.arch → Go's GOARCH, which is what Docker's `includes.arches` names. */
const GOARCH: Record<string, string> = {
  x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle',
};

/** GOARCH → the libseccomp name of the native architecture (moby's nativeToSeccomp). */
const NATIVE_SECCOMP: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', '386': 'SCMP_ARCH_X86', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64',
  ppc64le: 'SCMP_ARCH_PPC64LE', s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64',
  loong64: 'SCMP_ARCH_LOONGARCH64', mips: 'SCMP_ARCH_MIPS', mipsle: 'SCMP_ARCH_MIPSEL',
};

export interface ResolveOptions {
  /** Go-style architecture name (amd64, arm64, …); defaults to this host's. */
  arch?: string;
  /** Capabilities in the container's bounding set; defaults to DOCKER_DEFAULT_CAPS. */
  capabilities?: readonly string[];
  /** Kernel release (e.g. "6.1.0"); defaults to this host's. `minKernel` filters are checked against it. */
  kernel?: string;
}

export function hostGoArch(): string {
  return GOARCH[process.arch] ?? process.arch;
}

/** "6.18.44-fc" → [6, 18]; unparsable → [0, 0] so that minKernel rules are left out (the safe side). */
function kernelVersion(text: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : [0, 0];
}

function atLeast(kernel: [number, number], min: string): boolean {
  const [maj, minr] = kernelVersion(min);
  return kernel[0] > maj || (kernel[0] === maj && kernel[1] >= minr);
}

/**
 * Resolves a Docker-format profile into plain OCI `linux.seccomp` for one architecture, capability
 * set and kernel, with the same rules as moby's setupSeccomp: a rule is kept when none of its
 * `excludes` match and all of its `includes` match.
 */
export function resolveDockerProfile(profile: DockerSeccompProfile, opts: ResolveOptions = {}): OciSeccomp {
  const arch = opts.arch ?? hostGoArch();
  const caps = new Set(opts.capabilities ?? DOCKER_DEFAULT_CAPS);
  const kernel = kernelVersion(opts.kernel ?? release());

  const native = NATIVE_SECCOMP[arch];
  const architectures: string[] = [];
  for (const entry of profile.archMap ?? []) {
    if (entry.architecture === native) architectures.push(entry.architecture, ...(entry.subArchitectures ?? []));
  }

  const excluded = (f: DockerFilter | undefined): boolean =>
    !!f &&
    ((f.arches?.length ?? 0) > 0 && f.arches!.includes(arch) ||
      (f.caps?.length ?? 0) > 0 && f.caps!.some((c) => caps.has(c)) ||
      (!!f.minKernel && atLeast(kernel, f.minKernel)));
  const included = (f: DockerFilter | undefined): boolean =>
    !f ||
    (((f.arches?.length ?? 0) === 0 || f.arches!.includes(arch)) &&
      ((f.caps?.length ?? 0) === 0 || f.caps!.every((c) => caps.has(c))) &&
      (!f.minKernel || atLeast(kernel, f.minKernel)));

  const syscalls: SeccompRule[] = [];
  for (const rule of profile.syscalls) {
    if (excluded(rule.excludes) || !included(rule.includes)) continue;
    const out: SeccompRule = { names: [...rule.names], action: rule.action };
    if (rule.errnoRet !== undefined) out.errnoRet = rule.errnoRet;
    if (rule.args && rule.args.length > 0) out.args = rule.args.map((a) => ({ ...a }));
    syscalls.push(out);
  }

  const result: OciSeccomp = { defaultAction: profile.defaultAction };
  if (profile.defaultErrnoRet !== undefined) result.defaultErrnoRet = profile.defaultErrnoRet;
  if (architectures.length > 0) result.architectures = architectures;
  result.syscalls = syscalls;
  return result;
}

/** RuntimeDefault in OCI form for this host (or the given arch/capabilities/kernel). */
export function runtimeDefault(opts: ResolveOptions = {}): OciSeccomp {
  return resolveDockerProfile(MOBY_DEFAULT, opts);
}
