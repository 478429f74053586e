import type { OciSeccomp } from '../../src/profiles/seccomp/index.js';
import type { NetworkGrants } from '../network/types.js';
import type { SelinuxPlan } from './selinux.js';

/**
 * What the manifest's `[runtime]` table asks for (structurally the bundle module's RuntimeSpec;
 * restated here so that host/enforce depends only on the fields it reads).
 */
export interface RuntimeAsk {
  user?: string;
  read_only_rootfs?: boolean;
  capabilities?: readonly string[];
  network?: string;
  command?: readonly string[];
  env?: Readonly<Record<string, string>>;
  workdir?: string;
  resources?: { memory?: number; cpus?: number; pids?: number };
  ulimits?: { nofile?: { soft: number; hard: number } };
}

/** What the image config says (OCI image config `config`), used when the manifest is silent. */
export interface ImageDefaults {
  entrypoint?: readonly string[];
  cmd?: readonly string[];
  env?: readonly string[];
  workingDir?: string;
  user?: string;
}

export type Requirement = 'required' | 'optional';

/**
 * What the policy that approved the bundle allows and requires at run time (SPEC §7 "runtime
 * requirements"). Absent fields take the safe side: no root, no extra capabilities, no host network.
 */
export interface RuntimeGrants {
  seccomp?: Requirement;
  apparmor?: Requirement;
  monitoring?: Requirement;
  selinux?: Requirement;
  /** Capabilities the policy allows; the container gets ask ∩ allow. */
  capabilitiesAllowed?: readonly string[];
  allowRoot?: boolean;
  allowHostNetwork?: boolean;
  /** Syscalls a bundle profile may allow beyond RuntimeDefault. */
  seccompExtras?: readonly string[];
  limits?: { memoryBytes?: number; pids?: number; cpus?: number };
  /** What the app may publish and reach on a bridge network (host/network). */
  network?: NetworkGrants;
}

/** Profiles shipped in the bundle (`security/…`), as read from the verified bytes. */
export interface BundleProfiles {
  seccomp?: unknown;
  apparmor?: string;
  /** security/selinux/policy.cil */
  selinux?: string;
}

export interface EnforceInput {
  id: string;
  /** Absolute path of the unpacked root filesystem. */
  rootfs: string;
  app: { name: string; imageDigest: string };
  runtime?: RuntimeAsk;
  image?: ImageDefaults;
  grants: RuntimeGrants;
  profiles?: BundleProfiles;
  /** Run in a user namespace mapping container ids to unprivileged host ids (default: when not root). */
  userns?: { hostUid: number; hostGid: number; size: number };
  /** cgroup path (relative to the hierarchy roots) for the container, e.g. /cerro-torre/<id>. */
  cgroupsPath?: string;
}

export interface AppArmorPlan {
  name: string;
  text: string;
  source: 'bundle' | 'generated';
  /** Set in the OCI config only when the host enforces AppArmor. */
  applied: boolean;
  reason?: string;
}

export interface EnforcePlan {
  config: OciConfig;
  seccomp: { source: 'bundle' | 'runtime-default'; profile: OciSeccomp };
  apparmor: AppArmorPlan;
  selinux: SelinuxPlan;
  capabilities: string[];
  user: { uid: number; gid: number };
}

/** The subset of the OCI runtime config this host writes (runtime-spec config.md). */
export interface OciConfig {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: { bounding: string[]; effective: string[]; permitted: string[]; inheritable: string[]; ambient: string[] };
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
    apparmorProfile?: string;
    selinuxLabel?: string;
    oomScoreAdj?: number;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  /** OCI annotations: what the host must find again with the container (side-by-side.ts: its health check). */
  annotations?: Record<string, string>;
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: {
    namespaces: { type: string; path?: string }[];
    uidMappings?: { containerID: number; hostID: number; size: number }[];
    gidMappings?: { containerID: number; hostID: number; size: number }[];
    resources?: {
      devices?: { allow: boolean; access: string; type?: string; major?: number; minor?: number }[];
      memory?: { limit?: number; swap?: number };
      pids?: { limit: number };
      cpu?: { quota?: number; period?: number };
    };
    cgroupsPath?: string;
    /** Kernel parameters runc writes in the container's namespaces before the app starts (network/ipv6.ts). */
    sysctl?: Record<string, string>;
    mountLabel?: string;
    seccomp: OciSeccomp;
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}
