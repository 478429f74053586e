/**
 * What a verified bundle asks of a container's security context in Kubernetes terms, and the
 * check that a pod asks no less. Profile names are this project's (`cerro-torre-<app>-<digest12>`,
 * src/profiles/apparmor/names.ts), never a name the bundle picks; the Security Profiles Operator
 * installs a cluster-scoped SeccompProfile NAME as `operator/NAME.json` on every node.
 */
import { profileNameFor } from '../profiles/apparmor/names.js';
import type { BundleFacts } from '../policy/types.js';
import { grantedCapabilities } from '../policy/capability-grant.js';
import { isObj, type ContainerRef } from './workloads.js';

export interface BundleProfiles {
  /** SPO SeccompProfile name, when the bundle carries security/seccomp.json. */
  seccomp?: string;
  /** SPO AppArmorProfile name, when the bundle carries security/apparmor and the nodes enforce AppArmor: set and required. */
  apparmor?: string;
  /** Its name where the nodes are not said to enforce AppArmor: neither set nor required, accepted when a pod names it. */
  apparmorNotEnforced?: string;
  /**
   * Capabilities the bundle runs with, in Kubernetes spelling (no CAP_ prefix): the manifest's
   * [runtime] ask that the policies allow (never `ALL`).
   */
  capabilities: string[];
  /** The manifest asks for the host network. */
  hostNetwork: boolean;
  /** The manifest's `[runtime] user`: numeric ids when it gives them; `nonRoot` unless it names root. */
  user?: ManifestUser;
  /** The manifest says `read_only_rootfs = true`. */
  readOnlyRootfs?: boolean;
}

export interface ManifestUser {
  /** As written in the manifest (`65534:65534`, `app`, `root`). */
  spec: string;
  uid?: number;
  gid?: number;
  nonRoot: boolean;
}

/** `uid[:gid]` gives numbers Kubernetes can set; a name other than root only says "not root". */
export function manifestUser(user: string): ManifestUser {
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(user);
  if (!m) return { spec: user, nonRoot: user.split(':')[0] !== 'root' };
  const uid = Number(m[1]);
  return { spec: user, uid, ...(m[2] !== undefined ? { gid: Number(m[2]) } : {}), nonRoot: uid !== 0 };
}

export function seccompLocalhostPath(name: string): string {
  return `operator/${name}.json`;
}

/**
 * The profiles a container of this bundle is given and held to. Its AppArmor profile only where
 * the nodes enforce AppArmor (`nodesAppArmor`): the kubelet refuses a pod that asks for AppArmor
 * on a node without it, so the bundle could never run there. As on a host (docs/profiles.md), a
 * profile that cannot be enforced is left out, and a policy that requires AppArmor denies (it sees
 * nodes that do not enforce it).
 */
export function bundleProfiles(facts: BundleFacts, imageDigest: string, o: { nodesAppArmor?: boolean; capabilitiesAllowed?: readonly string[] } = { nodesAppArmor: true }): BundleProfiles {
  const name = profileNameFor(facts.name ?? 'app', imageDigest);
  const ask = facts.runtime?.capabilities ?? [];
  // Admission passes what the policies allow (capabilitiesAllowed): a pod gets ask ∩ allow, as a
  // host runs the bundle. Without it (`ct k8s render`, which has no policies) the manifest's, which
  // the mutating webhook then narrows to the granted ones. `ALL` never (grantedCapabilities).
  const granted = o.capabilitiesAllowed ? grantedCapabilities(ask, o.capabilitiesAllowed) : grantedCapabilities(ask, ask.filter((c): c is string => typeof c === 'string'));
  const caps = granted.map(k8sCapability);
  return {
    ...(facts.security?.seccomp !== undefined ? { seccomp: name } : {}),
    ...(facts.security?.apparmor !== undefined ? (o.nodesAppArmor ? { apparmor: name } : { apparmorNotEnforced: name }) : {}),
    capabilities: [...new Set(caps)].sort(),
    hostNetwork: facts.runtime?.network === 'host',
    ...(typeof facts.runtime?.user === 'string' ? { user: manifestUser(facts.runtime.user) } : {}),
    ...(facts.runtime?.read_only_rootfs === true ? { readOnlyRootfs: true } : {}),
  };
}

/** Kubernetes writes capabilities without the CAP_ prefix (`NET_BIND_SERVICE`); either spelling is accepted. */
export function k8sCapability(c: string): string {
  return c.toUpperCase().replace(/^CAP_/, '');
}

/**
 * The container-level fields the mutating webhook sets: the bundle's profiles, the manifest's
 * user (container fields win over the pod's in Kubernetes, so the pod cannot undo them), a
 * read-only root file system when the manifest asks for one, the granted capabilities (the
 * manifest's that the policies allow) and no others (desiredCapabilities), and no_new_privs (`allowPrivilegeEscalation: false`), which hosts
 * always set (host/enforce/oci-config.ts): Kubernetes leaves it off by default, and a setuid
 * binary of the image then makes the manifest's non-root user root again.
 */
export function desiredSecurityContext(p: BundleProfiles, current?: Record<string, unknown>): Record<string, unknown> {
  const u = p.user;
  return {
    // The API server refuses allowPrivilegeEscalation: false next to privileged: true, and would
    // answer that instead of the validating webhook's SECURITY_CONTEXT_WEAKER ("privileged: true"):
    // a privileged container is left as it asked, and denied by validation.
    ...(current?.privileged === true ? {} : { allowPrivilegeEscalation: false }),
    ...(u?.uid !== undefined ? { runAsUser: u.uid } : {}),
    ...(u?.gid !== undefined ? { runAsGroup: u.gid } : {}),
    ...(u?.nonRoot ? { runAsNonRoot: true } : {}),
    ...(p.readOnlyRootfs ? { readOnlyRootFilesystem: true } : {}),
    capabilities: desiredCapabilities(p, current?.capabilities),
    seccompProfile: p.seccomp ? { type: 'Localhost', localhostProfile: seccompLocalhostPath(p.seccomp) } : { type: 'RuntimeDefault' },
    ...(p.apparmor ? { appArmorProfile: { type: 'Localhost', localhostProfile: p.apparmor } } : {}),
  };
}

/** A capability list of a pod (`drop` or `add`) as Kubernetes names; what is not a string names nothing. */
function capabilityNames(list: unknown): Set<string> {
  return new Set(Array.isArray(list) ? list.filter((x): x is string => typeof x === 'string').map(k8sCapability) : []);
}

/**
 * The container's capabilities: `drop: ["ALL"]` and `add:` the granted ones (the manifest's that
 * the policies allow, never `ALL`), as a host runs the bundle (host/enforce/oci-config.ts). Left alone, containerd and CRI-O give every container
 * their default set (CHOWN, DAC_OVERRIDE, FOWNER, SETUID, SETGID, NET_RAW, MKNOD, …), far more
 * than a manifest asking for none grants, and CRI-O's set is the node's configuration to change.
 * Less where the container already asks less: a capability it drops by name, or, where it drops
 * ALL, one it does not add (the runtimes drop ALL first, then add, then drop the named ones).
 * What it adds beyond the granted ones is left out (mutate warns; validate denies what comes unpatched).
 * Always the Kubernetes spelling (`SYS_ADMIN`, which the runtimes prefix with CAP_): the API server
 * refuses `CAP_SYS_ADMIN` beside allowPrivilegeEscalation: false, which the webhook sets.
 */
export function desiredCapabilities(p: BundleProfiles, current: unknown): { drop: string[]; add?: string[] } {
  const cur = isObj(current) ? current : {};
  const dropped = capabilityNames(cur.drop);
  const added = capabilityNames(cur.add);
  const add = p.capabilities.filter((c) => c !== 'ALL' && !dropped.has(c) && (added.has(c) || !dropped.has('ALL')));
  return { drop: ['ALL'], ...(add.length ? { add } : {}) };
}

/**
 * What a container's capabilities.add names beyond the granted ones (anything not a string too).
 * `ALL` (any spelling) always: in `add` it is every capability, which nothing grants.
 */
export function capabilitiesBeyond(p: BundleProfiles, sc: Record<string, unknown> | undefined): unknown[] {
  const add = isObj(sc?.capabilities) && Array.isArray(sc.capabilities.add) ? sc.capabilities.add : [];
  return add.filter((x) => typeof x !== 'string' || k8sCapability(x) === 'ALL' || !p.capabilities.includes(k8sCapability(x)));
}

/**
 * What the mutating patch takes from a container that it would otherwise run with: the runtime's
 * default set where it did not drop `ALL`, and what it added beyond the granted ones (at most 8,
 * each cut to 64 characters). Undefined when nothing. For the decision record: in an audit-only
 * environment too the patch applies (as the profiles, user and no_new_privs do), so a pod may
 * behave otherwise with no denial to show for it.
 */
export function strippedCapabilities(p: BundleProfiles, sc: Record<string, unknown> | undefined): { added: string[]; runtimeDefaults: boolean } | undefined {
  const caps = sc?.capabilities;
  const runtimeDefaults = !(isObj(caps) && Array.isArray(caps.drop) && caps.drop.includes('ALL'));
  const added = capabilitiesBeyond(p, sc).slice(0, 8).map((x) => (typeof x === 'string' ? x : String(JSON.stringify(x))).slice(0, 64));
  return runtimeDefaults || added.length > 0 ? { added, runtimeDefaults } : undefined;
}

/**
 * A field in force for a container: its own securityContext's when set, else the pod's
 * (Kubernetes: "the value specified in SecurityContext takes precedence" for the fields both
 * have: runAsUser, runAsGroup, runAsNonRoot, seccompProfile, appArmorProfile, …).
 */
function effectiveField(c: ContainerRef, pod: Record<string, unknown>, field: string): unknown {
  const own = c.securityContext?.[field];
  if (own !== undefined && own !== null) return own;
  const podSc = pod.securityContext;
  return isObj(podSc) ? (podSc[field] ?? undefined) : undefined;
}

/** The profile in force for a container: its own field, else the pod's (Kubernetes' rule). */
export function effectiveProfile(c: ContainerRef, pod: Record<string, unknown>, field: 'seccompProfile' | 'appArmorProfile'): Record<string, unknown> | undefined {
  const v = effectiveField(c, pod, field);
  return isObj(v) ? v : undefined;
}

/**
 * The runtime's default capabilities kept (no `drop: ["ALL"]`: naming each default is not enough,
 * CRI-O's set is the node's to configure), or one added beyond the granted ones. "ALL" exactly, as
 * Pod Security's restricted profile reads it. Lists that are not lists are refused, not read as empty.
 */
function weakerCapabilities(sc: Record<string, unknown>, p: BundleProfiles): string[] {
  const caps = sc.capabilities ?? {};
  const listOrUnset = (v: unknown) => v === undefined || v === null || Array.isArray(v);
  if (!isObj(caps) || !listOrUnset(caps.add) || !listOrUnset(caps.drop)) return ['capabilities: add and drop must be lists'];
  const out: string[] = [];
  const drop = Array.isArray(caps.drop) ? caps.drop : undefined;
  if (!drop?.includes('ALL')) out.push(`capabilities.drop must include "ALL" (the runtime's defaults are more than the bundle is granted), not ${drop ? JSON.stringify(drop.slice(0, 8)).slice(0, 120) : 'unset'}`);
  const extra = capabilitiesBeyond(p, sc);
  if (extra.length > 0) out.push(`capabilities.add ${JSON.stringify(extra.slice(0, 8)).slice(0, 200)} beyond those granted ${JSON.stringify(p.capabilities)} (the manifest's that the policies allow)`);
  return out;
}

/**
 * Root where the manifest names a non-root user: runAsUser 0, or no runAsUser and no
 * runAsNonRoot (the image's USER decides, which the webhook cannot see: fail closed).
 * readOnlyRootFilesystem exists only on the container.
 */
function weakerUser(c: ContainerRef, pod: Record<string, unknown>, p: BundleProfiles): string[] {
  const out: string[] = [];
  if (p.user?.nonRoot) {
    const uid = effectiveField(c, pod, 'runAsUser');
    const nonRoot = effectiveField(c, pod, 'runAsNonRoot');
    const want = `the manifest runs as user ${JSON.stringify(p.user.spec)}`;
    if (uid !== undefined && (typeof uid !== 'number' || !Number.isInteger(uid) || uid < 0)) out.push(`runAsUser ${JSON.stringify(uid).slice(0, 40)} is not a user id; ${want}`);
    else if (uid === 0) out.push(`runAsUser: 0 (root); ${want}`);
    else if (uid === undefined && nonRoot !== true) out.push(`neither runAsNonRoot: true nor a non-zero runAsUser (the image's default user may be root); ${want}`);
  }
  if (p.readOnlyRootfs && c.securityContext?.readOnlyRootFilesystem !== true) out.push('readOnlyRootFilesystem must be true (the manifest says read_only_rootfs = true)');
  return out;
}

/**
 * Every way this container's security context is weaker than its bundle asks: privileged,
 * privilege escalation allowed (no no_new_privs), the runtime's default capabilities kept or others added beyond the manifest, a seccomp or AppArmor profile other than the bundle's,
 * root where the manifest names another user, a writable root file system where it asks for a
 * read-only one, SELinux options or /proc outside the runtime's confinement, host namespaces the
 * manifest does not ask for, the node's ports (hostPort), a Windows host process, the node's files
 * (hostPath), sysctls outside Pod Security baseline's safe ones.
 * Empty when none.
 */
export function weakerThanBundle(c: ContainerRef, pod: Record<string, unknown>, p: BundleProfiles): string[] {
  const out: string[] = [];
  const sc = c.securityContext ?? {};
  if (sc.privileged === true) out.push('privileged: true');
  // A container-only field, unset meaning true: only an explicit false is no_new_privs.
  if (sc.allowPrivilegeEscalation !== false) out.push(`allowPrivilegeEscalation must be false (bundles run with no_new_privs, as on a host), not ${sc.allowPrivilegeEscalation === undefined || sc.allowPrivilegeEscalation === null ? 'unset (true)' : JSON.stringify(sc.allowPrivilegeEscalation).slice(0, 40)}`);
  out.push(...weakerCapabilities(sc, p));
  const seccomp = effectiveProfile(c, pod, 'seccompProfile');
  if (p.seccomp) {
    const want = seccompLocalhostPath(p.seccomp);
    if (seccomp?.type !== 'Localhost' || seccomp.localhostProfile !== want) out.push(`seccompProfile must be Localhost ${want} (the bundle's), not ${describe(seccomp)}`);
  } else if (seccomp?.type !== 'RuntimeDefault') {
    // What the mutating webhook sets; a Localhost profile of the pod's choosing may be any file on the node.
    out.push(`seccompProfile must be RuntimeDefault (the bundle carries no profile), not ${describe(seccomp)}`);
  }
  if (p.apparmor) {
    const aa = effectiveProfile(c, pod, 'appArmorProfile');
    if (aa?.type !== 'Localhost' || aa.localhostProfile !== p.apparmor) out.push(`appArmorProfile must be Localhost ${p.apparmor} (the bundle's), not ${describe(aa)}`);
  } else {
    // The bundle's own profile (ct k8s render sets it; templates patched before the nodes were
    // said not to enforce AppArmor carry it) is stronger than the default: accepted.
    const aa = effectiveProfile(c, pod, 'appArmorProfile');
    const own = p.apparmorNotEnforced !== undefined && aa?.type === 'Localhost' && aa.localhostProfile === p.apparmorNotEnforced;
    const allowed = p.apparmorNotEnforced
      ? `RuntimeDefault, unset or Localhost ${p.apparmorNotEnforced} (the bundle's, not required where the nodes are not said to enforce AppArmor)`
      : 'RuntimeDefault or unset (the bundle carries no profile)';
    if (aa && aa.type !== 'RuntimeDefault' && !own) out.push(`appArmorProfile must be ${allowed}, not ${describe(aa)}`);
  }
  out.push(...weakerUser(c, pod, p));
  out.push(...weakerSeLinux(c, pod));
  if (pod.hostNetwork === true && !p.hostNetwork) out.push('hostNetwork: true, which the manifest does not ask for');
  if (pod.hostPID === true) out.push('hostPID: true');
  if (pod.hostIPC === true) out.push('hostIPC: true');
  out.push(...hostPorts(pod, p));
  if (effectiveWindowsHostProcess(c, pod)) out.push('windowsOptions.hostProcess: true (a process of the node, outside any container)');
  out.push(...hostPathMounts(c, pod));
  out.push(...unsafeSysctls(pod));
  return out;
}

/**
 * The sysctls Pod Security's baseline allows a pod to set: namespaced to the pod, none reaching
 * the node or its other pods (https://kubernetes.io/docs/concepts/security/pod-security-standards/).
 */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range', 'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes',
]);

/**
 * The pod's `securityContext.sysctls` outside the baseline's safe ones: a node whose kubelet allows
 * unsafe sysctls (`--allowed-unsafe-sysctls`, for some other workload) would set them for any
 * verified image, changing kernel settings the manifest does not ask for and a host would not set.
 */
function unsafeSysctls(pod: Record<string, unknown>): string[] {
  const sc = pod.securityContext;
  const list = isObj(sc) && Array.isArray(sc.sysctls) ? sc.sysctls : [];
  if (list.length > MAX_MOUNTS) return [`${list.length} sysctls: more than ${MAX_MOUNTS} are not judged`];
  const bad = list.map((s) => (isObj(s) ? s.name : s)).filter((n) => typeof n !== 'string' || !SAFE_SYSCTLS.has(n.replace(/\//g, '.')));
  return bad.length > 0 ? [`sysctls ${bad.slice(0, 8).map((n) => JSON.stringify(n).slice(0, 80)).join(', ')}: outside the baseline's safe ones, which the manifest cannot ask for`] : [];
}

/** The container's `windowsOptions.hostProcess`, else the pod's (Kubernetes' rule for that field). */
function effectiveWindowsHostProcess(c: ContainerRef, pod: Record<string, unknown>): boolean {
  const own = c.securityContext?.windowsOptions;
  if (isObj(own) && own.hostProcess !== undefined && own.hostProcess !== null) return own.hostProcess === true;
  const podSc = pod.securityContext;
  return isObj(podSc) && isObj(podSc.windowsOptions) && podSc.windowsOptions.hostProcess === true;
}

/**
 * Ports the pod publishes on the node (`hostPort`), whichever of its containers names them: the
 * pod's containers share one network, so a hostPort on an exempt sidecar (not judged itself)
 * forwards the node's port to the judged app's as well. The container runtime's port mapping
 * takes every connection to that port of the node's addresses, the node's own services' (its SSH,
 * the kubelet's 10250) included, as Pod Security's baseline warns. A host publishes a bundle's
 * port only where its policies' `runtime.network.publish` allow it, which the webhook does not
 * judge: refused, unless the pod is on the host network that the manifest asks for (where the
 * API server makes each hostPort the containerPort, and the app binds the node's ports itself).
 */
function hostPorts(pod: Record<string, unknown>, p: BundleProfiles): string[] {
  if (pod.hostNetwork === true && p.hostNetwork) return [];
  // Ephemeral containers cannot have ports (the API server refuses them).
  const ports = ['initContainers', 'containers'].flatMap((k) => (Array.isArray(pod[k]) ? (pod[k] as unknown[]) : [])).flatMap((x) => (isObj(x) && Array.isArray(x.ports) ? (x.ports as unknown[]) : []));
  if (ports.length > MAX_MOUNTS) return [`${ports.length} ports: more than ${MAX_MOUNTS} are not judged`];
  const host = ports.filter((x) => isObj(x) && x.hostPort !== undefined && x.hostPort !== null && x.hostPort !== 0).map((x) => JSON.stringify((x as Record<string, unknown>).hostPort).slice(0, 12));
  return host.length > 0 ? [`hostPort ${host.slice(0, 8).join(', ')}: a port of the node's addresses, which the manifest cannot ask for (publish through a Service)`] : [];
}

/** The SELinux types a container may run as: the runtime's own (Pod Security's baseline list). */
const SELINUX_TYPES = new Set(['container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);

/**
 * SELinux options that leave the runtime's confinement, as an Unconfined seccomp or AppArmor
 * profile would: another type (`spc_t`, the "super privileged container", is unconfined), or
 * another user or role; the MCS level is the runtime's separation of pods, as Pod Security
 * allows. And `procMount: Unmasked` (the runtime masks /proc's host paths).
 */
function weakerSeLinux(c: ContainerRef, pod: Record<string, unknown>): string[] {
  const out: string[] = [];
  const own = c.securityContext?.seLinuxOptions;
  const podSc = pod.securityContext;
  const ofPod = isObj(podSc) ? podSc.seLinuxOptions : undefined;
  const set = (v: unknown) => v !== undefined && v !== null && v !== '';
  // Field by field, the container's when set, else the pod's: not effectiveField's whole object.
  // The container runtime labels a container whose options are all empty (`seLinuxOptions: {}`)
  // with the pod's label, so a container's empty object over a pod's `type: spc_t` ran unconfined.
  const field = (f: string): unknown => (isObj(own) && set(own[f]) ? own[f] : isObj(ofPod) ? ofPod[f] : undefined);
  const type = field('type');
  if (set(type) && !SELINUX_TYPES.has(type as string)) out.push(`seLinuxOptions.type ${JSON.stringify(type).slice(0, 80)}: only the runtime's (${[...SELINUX_TYPES].join(', ')})`);
  for (const f of ['user', 'role'] as const) {
    const v = field(f);
    if (set(v)) out.push(`seLinuxOptions.${f} ${JSON.stringify(v).slice(0, 80)}: not the runtime's`);
  }
  const proc = c.securityContext?.procMount;
  if (proc !== undefined && proc !== null && proc !== 'Default') out.push(`procMount ${JSON.stringify(proc).slice(0, 40)}: /proc unmasked`);
  return out;
}

/**
 * More volumes or mounts than this are refused, not looked at (the API server's pods have far
 * fewer): only the first ones were scanned, and a thousand emptyDirs before a hostPath of / hid it.
 */
const MAX_MOUNTS = 1000;

/**
 * The pod's hostPath volumes this container mounts: the node's files (`/`, the container
 * runtime's socket, the kubelet's credentials) are root on the node, and a manifest cannot ask
 * for them — a host runs a bundle with none of its files — so a verified image with a shell is
 * otherwise the node's. Images that need them (a CSI driver, a log agent) are exempt ones.
 */
function hostPathMounts(c: ContainerRef, pod: Record<string, unknown>): string[] {
  const volumes = Array.isArray(pod.volumes) ? pod.volumes : [];
  if (volumes.length > MAX_MOUNTS) return [`${volumes.length} volumes: more than ${MAX_MOUNTS} are not judged`];
  const host = new Map<string, string>();
  for (const v of volumes) {
    if (isObj(v) && typeof v.name === 'string' && v.hostPath !== undefined && v.hostPath !== null) {
      host.set(v.name, isObj(v.hostPath) && typeof v.hostPath.path === 'string' ? v.hostPath.path : '?');
    }
  }
  if (host.size === 0) return [];
  const list = pod[c.list];
  const self = Array.isArray(list) ? list[c.index] : undefined;
  const mounts = isObj(self) && Array.isArray(self.volumeMounts) ? self.volumeMounts : [];
  if (mounts.length > MAX_MOUNTS) return [`${mounts.length} volume mounts: more than ${MAX_MOUNTS} are not judged`];
  const named = new Set<string>();
  for (const m of mounts) if (isObj(m) && typeof m.name === 'string' && host.has(m.name)) named.add(m.name);
  return [...named].map((n) => `hostPath volume ${JSON.stringify(n.slice(0, 64))} (${JSON.stringify(host.get(n)!.slice(0, 120))}) mounted: the manifest cannot ask for the node's files`);
}

function describe(p: Record<string, unknown> | undefined): string {
  if (!p) return 'unset (Unconfined)';
  return typeof p.localhostProfile === 'string' ? `${String(p.type)} ${p.localhostProfile.slice(0, 120)}` : String(p.type).slice(0, 40);
}
