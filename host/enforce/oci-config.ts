import { resolve } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { checkBundleSeccomp, confines, runtimeDefault, type OciSeccomp } from '../../src/profiles/seccomp/index.js';
import { sanitizeAppName } from '../../src/profiles/apparmor/index.js';
import { grantedCapabilities } from '../../src/policy/capability-grant.js';
import type { HostFacts } from '../facts.js';
import { planAppArmor } from './apparmor.js';
import { planSelinux } from './selinux.js';
import { assertHostCanEnforce } from './requirements.js';
import { resolveUser } from './user.js';
import type { EnforceInput, EnforcePlan, OciConfig } from './types.js';

const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const DEFAULT_PIDS = 1024;

/** runc spec's defaults (runc 1.1 libcontainer/specconv/example.go): hide and freeze kernel files. */
export const MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/sys/firmware', '/proc/scsi',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

function mounts(rootless: boolean, mappedIds: number): OciConfig['mounts'] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      // gid=5 (tty) does not exist in a user namespace that maps fewer ids.
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', ...(rootless && mappedIds <= 5 ? [] : ['gid=5'])],
    },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    // A user namespace without its own network namespace cannot mount sysfs: bind it instead (as runc spec --rootless).
    rootless
      ? { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    // A read-only rootfs still needs somewhere to write scratch files.
    { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', 'size=65536k'] },
  ];
}

/**
 * The seccomp profile the container runs under: the bundle's (checked) or RuntimeDefault. Never none.
 * A bundle's profile replaces RuntimeDefault, so it may only narrow it, whatever the policy says:
 * judged by `confines()` always, not only when a policy requires seccomp. Without a requiring policy
 * (`ct run` without --policies, a policy with no runtime.seccomp) a profile of
 * `{"defaultAction":"SCMP_ACT_ALLOW"}` would otherwise turn seccomp off, and a no-capability app
 * could unshare(CLONE_NEWUSER) into a namespace with every capability. Extras (syscalls beyond
 * RuntimeDefault) come only from a policy that requires seccomp (runtimeGrants); none otherwise.
 * Refused, never replaced by RuntimeDefault: the bundle asked for something else and should say so.
 */
function chooseSeccomp(input: EnforceInput, capabilities: string[], facts: HostFacts): EnforcePlan['seccomp'] {
  if (input.profiles?.seccomp !== undefined) {
    const profile = checkBundleSeccomp(input.profiles.seccomp);
    const extras = input.grants.seccomp === 'required' ? input.grants.seccompExtras : [];
    const report = confines(profile, { extras, capabilities, arch: facts.architecture, kernel: facts.kernel });
    if (!report.confines) {
      throw new CtError(
        'POLICY_VIOLATION',
        `security/seccomp.json does not confine: a bundle's profile may only narrow RuntimeDefault (${report.problems.join(', ')}${report.outside.length ? `: ${report.outside.join(', ')}` : ''})`,
        { problems: report.problems, outside: report.outside, seccomp: input.grants.seccomp ?? 'optional' },
      );
    }
    return { source: 'bundle', profile };
  }
  return { source: 'runtime-default', profile: runtimeDefault({ capabilities, arch: facts.architecture, kernel: facts.kernel }) };
}

function processArgs(input: EnforceInput): string[] {
  if (input.runtime?.command && input.runtime.command.length > 0) return [...input.runtime.command];
  const args = [...(input.image?.entrypoint ?? []), ...(input.image?.cmd ?? [])];
  if (args.length === 0) throw new CtError('MANIFEST_INVALID', 'no command: neither runtime.command nor the image config gives one', {});
  return args;
}

function processEnv(input: EnforceInput): string[] {
  const env = new Map<string, string>();
  for (const kv of [DEFAULT_PATH, ...(input.image?.env ?? [])]) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const [k, v] of Object.entries(input.runtime?.env ?? {})) env.set(k, v);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

/**
 * Builds the OCI runtime config for an approved bundle (SPEC §8): refuses first when the host
 * cannot enforce what the policy requires, then namespaces, a non-root user unless the policy
 * allows root, read-only rootfs unless the manifest asks for a writable one, no-new-privileges,
 * capabilities = manifest ask ∩ policy allow in all five sets, cgroup limits, runc's default
 * mounts and masked/read-only paths, a seccomp profile always, and the AppArmor profile where the
 * kernel enforces it.
 */
export async function buildRuntimePlan(input: EnforceInput, facts: HostFacts): Promise<EnforcePlan> {
  assertHostCanEnforce(input.grants, facts);
  const rootless = input.userns !== undefined;
  // ask ∩ allow, the function Kubernetes admission grants a pod's capabilities with.
  const capabilities = grantedCapabilities(input.runtime?.capabilities, input.grants.capabilitiesAllowed ?? []);

  const user = await resolveUser(input.rootfs, input.runtime?.user ?? input.image?.user);
  if ((user.uid === 0 || user.gid === 0) && !input.grants.allowRoot) {
    throw new CtError('POLICY_VIOLATION', 'the app asks to run as root and the policy does not allow root', { user });
  }

  const network = input.runtime?.network ?? 'none';
  if (network === 'host' && !input.grants.allowHostNetwork) {
    throw new CtError('POLICY_VIOLATION', 'the app asks for the host network and the policy does not allow it', { network });
  }

  const seccomp = chooseSeccomp(input, capabilities, facts);
  const apparmor = await planAppArmor(input, facts);
  const selinux = planSelinux(input, facts);

  const namespaces: OciConfig['linux']['namespaces'] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }];
  if (network !== 'host') namespaces.push({ type: 'network' });
  if (rootless) namespaces.push({ type: 'user' });

  // What the manifest asks ([runtime.resources]); the policy's limit when it asks nothing. An ask
  // above the limit was denied by the policy already; min() keeps a host safe if it was not.
  const limits = input.grants.limits ?? {};
  const ask = input.runtime?.resources ?? {};
  const pick = (a: number | undefined, cap: number | undefined) => (a === undefined ? cap : cap === undefined ? a : Math.min(a, cap));
  const memory = pick(ask.memory, limits.memoryBytes);
  const cpus = pick(ask.cpus, limits.cpus);
  const resources: NonNullable<OciConfig['linux']['resources']> = {
    devices: [{ allow: false, access: 'rwm' }],
    pids: { limit: pick(ask.pids, limits.pids) ?? DEFAULT_PIDS },
  };
  // swap = limit: no swap beyond the memory limit, so that going past it is an OOM kill, not paging.
  if (memory) resources.memory = { limit: memory, swap: memory };
  if (cpus) resources.cpu = { period: 100000, quota: Math.max(1000, Math.round(cpus * 100000)) };
  const nofile = input.runtime?.ulimits?.nofile ?? { soft: 1024, hard: 1024 };

  const config: OciConfig = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user,
      args: processArgs(input),
      env: processEnv(input),
      cwd: input.runtime?.workdir ?? input.image?.workingDir ?? '/',
      capabilities: {
        bounding: [...capabilities],
        effective: [...capabilities],
        permitted: [...capabilities],
        inheritable: [...capabilities],
        ambient: [...capabilities],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile.hard, soft: nofile.soft }],
      noNewPrivileges: true,
    },
    root: { path: resolve(input.rootfs), readonly: input.runtime?.read_only_rootfs ?? true },
    hostname: sanitizeAppName(input.app.name).slice(0, 63),
    mounts: mounts(rootless, input.userns?.size ?? 0),
    linux: {
      namespaces,
      resources,
      seccomp: seccomp.profile as OciSeccomp,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
  if (apparmor.applied) config.process.apparmorProfile = apparmor.name;
  if (selinux.applied) {
    config.process.selinuxLabel = selinux.processLabel;
    config.linux.mountLabel = selinux.mountLabel;
  }
  if (rootless) {
    const m = input.userns!;
    config.linux.uidMappings = [{ containerID: 0, hostID: m.hostUid, size: m.size }];
    config.linux.gidMappings = [{ containerID: 0, hostID: m.hostGid, size: m.size }];
  }
  if (rootless && process.getuid?.() !== 0) {
    // An unprivileged agent's runc cannot create cgroups or set limits without delegation.
    delete config.linux.resources;
  } else if (input.cgroupsPath) {
    config.linux.cgroupsPath = input.cgroupsPath;
  }
  return { config, seccomp, apparmor, selinux, capabilities, user };
}
