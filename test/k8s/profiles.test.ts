/**
 * The "no weaker than the bundle" check for a bundle that carries no seccomp or AppArmor profile:
 * the mutating webhook sets RuntimeDefault, and the validating webhook must not accept a
 * Localhost profile of the pod's choosing instead (any file on the node, e.g. another app's
 * permissive profile or one that allows every syscall).
 */
import { describe, expect, it } from '@jest/globals';
import { bundleProfiles, desiredCapabilities, desiredSecurityContext, manifestUser, strippedCapabilities, weakerThanBundle, type BundleProfiles } from '../../src/k8s/profiles.js';
import type { ContainerRef } from '../../src/k8s/workloads.js';

const none: BundleProfiles = { capabilities: [], hostNetwork: false };
/** A container with no_new_privs and no capabilities (what the mutating webhook sets) unless the test says otherwise. */
const container = (securityContext?: Record<string, unknown>): ContainerRef => ({ list: 'containers', index: 0, name: 'web', image: 'r.example/a@sha256:' + '0'.repeat(64), pointer: '/spec/containers/0', securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, ...securityContext } });

describe('no_new_privs, as every bundle has on a host', () => {
  it('is set by mutation and required by validation: unset (true by default in Kubernetes) or true lets a setuid binary make the manifest user root', () => {
    const p: BundleProfiles = { capabilities: [], hostNetwork: false, user: manifestUser('65534:65534') };
    const want = desiredSecurityContext(p);
    expect(want).toMatchObject({ allowPrivilegeEscalation: false });
    expect(weakerThanBundle(container(want), {}, p)).toEqual([]);
    const { allowPrivilegeEscalation: _, ...unset } = want;
    const bare: ContainerRef = { ...container(), securityContext: unset };
    expect(weakerThanBundle(bare, {}, p)).toEqual(['allowPrivilegeEscalation must be false (bundles run with no_new_privs, as on a host), not unset (true)']);
    expect(weakerThanBundle(container({ ...want, allowPrivilegeEscalation: true }), {}, p)).toEqual(['allowPrivilegeEscalation must be false (bundles run with no_new_privs, as on a host), not true']);
    expect(weakerThanBundle({ ...container(), securityContext: undefined }, {}, none)).toEqual([expect.stringMatching(/^allowPrivilegeEscalation must be false/), expect.stringMatching(/^capabilities\.drop must include "ALL"/), expect.stringMatching(/^seccompProfile must be RuntimeDefault/)]);
  });
});

describe('capabilities: the manifest\'s, none of the runtime\'s defaults (as a host runs the bundle)', () => {
  const granted: BundleProfiles = { capabilities: ['NET_BIND_SERVICE', 'SYS_ADMIN'], hostNetwork: false };
  const rd = { seccompProfile: { type: 'RuntimeDefault' } };

  it('mutation drops ALL and adds the manifest\'s, keeping what the container asks less of, never what it asks more', () => {
    expect(desiredCapabilities(none, undefined)).toEqual({ drop: ['ALL'] });
    expect(desiredSecurityContext(granted)).toMatchObject({ capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE', 'SYS_ADMIN'] } });
    // What the runtime would give it by default (CHOWN, SETUID, NET_RAW, …) is no grant of the manifest's.
    expect(desiredCapabilities(none, { add: ['CHOWN'], drop: ['NET_RAW'] })).toEqual({ drop: ['ALL'] });
    // Added beyond the manifest: left out; the manifest's own in the Kubernetes spelling.
    expect(desiredCapabilities(granted, { add: ['NET_ADMIN', 'CAP_SYS_ADMIN', 'ALL'] })).toEqual({ drop: ['ALL'], add: ['NET_BIND_SERVICE', 'SYS_ADMIN'] });
    // Stricter than the manifest: a capability dropped by name, or not added back after ALL.
    expect(desiredCapabilities(granted, { drop: ['cap_net_bind_service'] })).toEqual({ drop: ['ALL'], add: ['SYS_ADMIN'] });
    expect(desiredCapabilities(granted, { drop: ['ALL'], add: ['NET_BIND_SERVICE'] })).toEqual({ drop: ['ALL'], add: ['NET_BIND_SERVICE'] });
    expect(desiredCapabilities(granted, { drop: ['ALL'] })).toEqual({ drop: ['ALL'] });
    // Not lists: read as asking nothing of its own.
    expect(desiredCapabilities(granted, { add: 'NET_ADMIN', drop: 7 })).toEqual({ drop: ['ALL'], add: ['NET_BIND_SERVICE', 'SYS_ADMIN'] });
    for (const cur of [undefined, { add: ['NET_ADMIN'] }, { drop: ['ALL'], add: ['SYS_ADMIN'] }]) {
      expect(weakerThanBundle(container(desiredSecurityContext(granted, { capabilities: cur })), {}, granted)).toEqual([]);
    }
  });

  it('validation refuses the runtime\'s defaults kept (no drop of "ALL") and any capability beyond the manifest', () => {
    const defaults = ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'];
    const weaker = (capabilities: unknown) => weakerThanBundle(container({ ...rd, capabilities }), {}, granted);
    expect(weaker(undefined)).toEqual(['capabilities.drop must include "ALL" (the runtime\'s defaults are more than the bundle is granted), not unset']);
    expect(weaker({ add: ['NET_BIND_SERVICE'] })).toEqual([expect.stringMatching(/^capabilities\.drop must include "ALL" .*not unset/)]);
    // Each default named is not ALL: CRI-O's default set is the node's configuration.
    expect(weaker({ drop: defaults })).toEqual([expect.stringMatching(/^capabilities\.drop must include "ALL" .*not \["CHOWN",/)]);
    // "ALL" as Pod Security's restricted profile reads it.
    expect(weaker({ drop: ['all'] })).toHaveLength(1);
    expect(weaker({ drop: ['ALL'], add: ['NET_BIND_SERVICE', 'CAP_SYS_ADMIN', 'NET_ADMIN', 'ALL'] })).toEqual(['capabilities.add ["NET_ADMIN","ALL"] beyond those granted ["NET_BIND_SERVICE","SYS_ADMIN"] (the manifest\'s that the policies allow)']);
    expect(weaker('ALL')).toEqual(['capabilities: add and drop must be lists']);
    expect(weaker({ drop: 'ALL' })).toEqual(['capabilities: add and drop must be lists']);
    expect(weaker({ drop: ['ALL'], add: ['SYS_ADMIN'] })).toEqual([]);
    expect(weaker({ drop: ['ALL', 'NET_RAW'], add: null })).toEqual([]);
    // A container-only field: the pod's securityContext has none to fall back on.
    expect(weakerThanBundle(container({ ...rd, capabilities: undefined }), { securityContext: { capabilities: { drop: ['ALL'] } } }, granted)).toHaveLength(1);
  });
});

describe('CAP_ALL and the policies\' grant', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const rd = { seccompProfile: { type: 'RuntimeDefault' } };

  it('a manifest\'s CAP_ALL grants nothing, even where a policy allows it: never add: ["ALL"] (every capability)', () => {
    const facts = { name: 'app', runtime: { capabilities: ['CAP_ALL', 'CAP_NET_BIND_SERVICE'] } };
    expect(bundleProfiles(facts, digest).capabilities).toEqual(['NET_BIND_SERVICE']);
    expect(bundleProfiles(facts, digest, { capabilitiesAllowed: ['CAP_ALL', 'CAP_NET_BIND_SERVICE'] }).capabilities).toEqual(['NET_BIND_SERVICE']);
    expect(bundleProfiles({ name: 'app', runtime: { capabilities: ['CAP_ALL'] } }, digest, { capabilitiesAllowed: ['CAP_ALL'] }).capabilities).toEqual([]);
    // Profiles that say ALL all the same (a judge of another make): not written, and beyond in validation.
    const all: BundleProfiles = { capabilities: ['ALL'], hostNetwork: false };
    expect(desiredCapabilities(all, { add: ['ALL'] })).toEqual({ drop: ['ALL'] });
    for (const spelling of ['ALL', 'all', 'CAP_ALL']) {
      expect(weakerThanBundle(container({ ...rd, capabilities: { drop: ['ALL'], add: [spelling] } }), {}, all)).toEqual([expect.stringMatching(new RegExp(`^capabilities\\.add \\["${spelling}"\\] beyond`))]);
    }
  });

  it('what the patch takes, for the decision record: the runtime\'s defaults without a drop of ALL, what is added beyond the grant, bounded', () => {
    const granted: BundleProfiles = { capabilities: ['NET_BIND_SERVICE'], hostNetwork: false };
    expect(strippedCapabilities(granted, undefined)).toEqual({ added: [], runtimeDefaults: true });
    expect(strippedCapabilities(granted, { capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] } })).toBeUndefined();
    expect(strippedCapabilities(granted, { capabilities: { drop: ['ALL'], add: ['ALL', 7, 'X'.repeat(500), ...Array.from({ length: 20 }, (_, i) => `C${i}`)] } })).toEqual({ added: ['ALL', '7', 'X'.repeat(64), 'C0', 'C1', 'C2', 'C3', 'C4'], runtimeDefaults: false });
  });

  it('the profiles grant the manifest\'s capabilities that the policies allow, in either spelling, none when none is allowed', () => {
    const facts = { name: 'app', runtime: { capabilities: ['CAP_NET_BIND_SERVICE', 'CAP_SYS_ADMIN', 'CAP_SYS_MODULE'] } };
    expect(bundleProfiles(facts, digest, { capabilitiesAllowed: [] }).capabilities).toEqual([]);
    expect(bundleProfiles(facts, digest, { capabilitiesAllowed: ['CAP_NET_BIND_SERVICE', 'CAP_CHOWN'] }).capabilities).toEqual(['NET_BIND_SERVICE']);
    expect(bundleProfiles(facts, digest, { capabilitiesAllowed: ['net_bind_service', 'SYS_ADMIN'] }).capabilities).toEqual(['NET_BIND_SERVICE', 'SYS_ADMIN']);
  });
});

describe('the node\'s files', () => {
  const rd = { seccompProfile: { type: 'RuntimeDefault' } };
  const init: ContainerRef = { ...container(rd), list: 'initContainers' };
  it('refuses a hostPath volume the container mounts (a verified image with a shell would own the node), not one it leaves alone', () => {
    const pod = (mounts: string[]) => ({
      volumes: [{ name: 'root', hostPath: { path: '/', type: 'Directory' } }, { name: 'sock', hostPath: { path: '/run/containerd/containerd.sock' } }, { name: 'scratch', emptyDir: {} }],
      initContainers: [{ name: 'web', image: 'r.example/a', volumeMounts: mounts.map((name, i) => ({ name, mountPath: `/m${i}` })) }],
    });
    expect(weakerThanBundle(init, pod(['scratch']), none)).toEqual([]);
    // Not only the first thousand: padding before the hostPath volume or its mount is refused.
    const padded = pod(['root']);
    padded.volumes = [...Array.from({ length: 1000 }, (_, i) => ({ name: `d${i}`, emptyDir: {} })), ...padded.volumes] as typeof padded.volumes;
    expect(weakerThanBundle(init, padded, none)).toEqual(['1003 volumes: more than 1000 are not judged']);
    const mounts = pod([...Array.from({ length: 1000 }, () => 'scratch'), 'root']);
    expect(weakerThanBundle(init, mounts, none)).toEqual(['1001 volume mounts: more than 1000 are not judged']);
    expect(weakerThanBundle(init, pod(['root', 'scratch', 'root', 'sock']), none)).toEqual([
      'hostPath volume "root" ("/") mounted: the manifest cannot ask for the node\'s files',
      'hostPath volume "sock" ("/run/containerd/containerd.sock") mounted: the manifest cannot ask for the node\'s files',
    ]);
    // Another container's mount is that container's: judged with it (or exempt with it).
    expect(weakerThanBundle(container(rd), { ...pod(['root']), containers: [{ name: 'side', image: 'r.example/b' }] }, none)).toEqual([]);
  });
});

describe('SELinux and /proc', () => {
  const rd = { seccompProfile: { type: 'RuntimeDefault' } };
  it('refuses a type other than the runtime\'s (spc_t is unconfined), a user or role, at container or pod level, and an unmasked /proc', () => {
    expect(weakerThanBundle(container({ ...rd, seLinuxOptions: { type: 'container_t', level: 's0:c123,c456' }, procMount: 'Default' }), {}, none)).toEqual([]);
    expect(weakerThanBundle(container({ ...rd, seLinuxOptions: { type: 'spc_t' } }), {}, none)).toEqual([expect.stringMatching(/^seLinuxOptions\.type "spc_t": only the runtime's/)]);
    expect(weakerThanBundle(container(rd), { securityContext: { seLinuxOptions: { type: 'unconfined_t', user: 'system_u', role: 'system_r' } } }, none)).toHaveLength(3);
    // The container's own options win over the pod's (Kubernetes' precedence).
    expect(weakerThanBundle(container({ ...rd, seLinuxOptions: { type: 'container_t' } }), { securityContext: { seLinuxOptions: { type: 'spc_t' } } }, none)).toEqual([]);
    // An empty object (or empty fields) of the container's is not its label: the runtime gives it the pod's.
    for (const own of [{}, { type: '', level: '' }, { level: 's0:c1,c2' }]) {
      expect(weakerThanBundle(container({ ...rd, seLinuxOptions: own }), { securityContext: { seLinuxOptions: { type: 'spc_t', user: 'system_u' } } }, none)).toEqual([
        expect.stringMatching(/^seLinuxOptions\.type "spc_t"/),
        expect.stringMatching(/^seLinuxOptions\.user "system_u"/),
      ]);
    }
    expect(weakerThanBundle(container({ ...rd, procMount: 'Unmasked' }), {}, none)).toEqual(['procMount "Unmasked": /proc unmasked']);
  });
});

describe('a bundle without profiles', () => {
  it('accepts what the mutating webhook sets (RuntimeDefault), and AppArmor left to the runtime default', () => {
    expect(weakerThanBundle(container(desiredSecurityContext(none)), {}, none)).toEqual([]);
    expect(weakerThanBundle(container({ seccompProfile: { type: 'RuntimeDefault' }, appArmorProfile: { type: 'RuntimeDefault' } }), {}, none)).toEqual([]);
  });

  it('refuses a Localhost seccomp or AppArmor profile the bundle does not carry, at container or pod level', () => {
    const anyFile = { type: 'Localhost', localhostProfile: 'operator/allow-everything.json' };
    expect(weakerThanBundle(container({ seccompProfile: anyFile }), {}, none)).toEqual([expect.stringMatching(/^seccompProfile must be RuntimeDefault \(the bundle carries no profile\), not Localhost operator\/allow-everything\.json/)]);
    expect(weakerThanBundle(container(), { securityContext: { seccompProfile: anyFile } }, none)).toHaveLength(1);
    const aa = { type: 'Localhost', localhostProfile: 'unconfined-ish' };
    expect(weakerThanBundle(container({ seccompProfile: { type: 'RuntimeDefault' }, appArmorProfile: aa }), {}, none)).toEqual([expect.stringMatching(/^appArmorProfile must be RuntimeDefault or unset \(the bundle carries no profile\), not Localhost unconfined-ish/)]);
    expect(weakerThanBundle(container({ seccompProfile: { type: 'RuntimeDefault' }, appArmorProfile: { type: 'Unconfined' } }), {}, none)).toHaveLength(1);
  });
});

describe('the manifest\'s user and read-only root file system', () => {
  const rt = (user: string, readOnlyRootfs = false): BundleProfiles => ({ ...none, user: manifestUser(user), ...(readOnlyRootfs ? { readOnlyRootfs } : {}) });
  const base = { seccompProfile: { type: 'RuntimeDefault' } };

  it('reads uid[:gid], names and root', () => {
    expect(manifestUser('65534:65534')).toEqual({ spec: '65534:65534', uid: 65534, gid: 65534, nonRoot: true });
    expect(manifestUser('0')).toEqual({ spec: '0', uid: 0, nonRoot: false });
    expect(manifestUser('app')).toEqual({ spec: 'app', nonRoot: true });
    expect(manifestUser('root:wheel')).toEqual({ spec: 'root:wheel', nonRoot: false });
  });

  it('mutation sets what validation asks; a name becomes runAsNonRoot only', () => {
    expect(desiredSecurityContext(rt('1000:2000', true))).toMatchObject({ runAsUser: 1000, runAsGroup: 2000, runAsNonRoot: true, readOnlyRootFilesystem: true });
    const named = desiredSecurityContext(rt('app'));
    expect(named).toMatchObject({ runAsNonRoot: true });
    expect(named).not.toHaveProperty('runAsUser');
    expect(named).not.toHaveProperty('readOnlyRootFilesystem');
    for (const u of ['1000:2000', 'app']) expect(weakerThanBundle(container(desiredSecurityContext(rt(u, true))), {}, rt(u, true))).toEqual([]);
  });

  it('container fields win over the pod\'s; unset falls back to the pod; nothing set is refused', () => {
    const p = rt('app');
    expect(weakerThanBundle(container(base), { securityContext: { runAsNonRoot: true } }, p)).toEqual([]);
    expect(weakerThanBundle(container(base), { securityContext: { runAsUser: 0 } }, p)).toEqual([expect.stringMatching(/^runAsUser: 0 \(root\)/)]);
    expect(weakerThanBundle(container({ ...base, runAsUser: 1000 }), { securityContext: { runAsUser: 0 } }, p)).toEqual([]);
    expect(weakerThanBundle(container({ ...base, runAsUser: 0 }), { securityContext: { runAsUser: 1000, runAsNonRoot: true } }, p)).toHaveLength(1);
    expect(weakerThanBundle(container({ ...base, runAsNonRoot: false }), { securityContext: { runAsNonRoot: true } }, p)).toEqual([expect.stringMatching(/^neither runAsNonRoot/)]);
    expect(weakerThanBundle(container(base), {}, p)).toHaveLength(1);
    expect(weakerThanBundle(container({ ...base, runAsUser: '0' }), {}, p)).toEqual([expect.stringMatching(/is not a user id/)]);
  });

  it('a root or absent manifest user asks nothing; read-only is the container\'s field only', () => {
    expect(weakerThanBundle(container({ ...base, runAsUser: 0 }), {}, rt('0'))).toEqual([]);
    expect(weakerThanBundle(container({ ...base, runAsUser: 0 }), {}, none)).toEqual([]);
    const ro = rt('0', true);
    expect(weakerThanBundle(container(base), { securityContext: { readOnlyRootFilesystem: true } }, ro)).toEqual([expect.stringMatching(/^readOnlyRootFilesystem must be true/)]);
    expect(weakerThanBundle(container({ ...base, readOnlyRootFilesystem: true }), {}, ro)).toEqual([]);
  });
});

describe('a bundle with an AppArmor profile, on nodes not said to enforce AppArmor', () => {
  const notEnforced: BundleProfiles = { capabilities: [], hostNetwork: false, apparmorNotEnforced: 'cerro-torre-app-0123456789ab' };
  it('sets none and requires none, accepts the bundle\'s own (ct k8s render sets it), and refuses any other Localhost profile', () => {
    expect(desiredSecurityContext(notEnforced)).not.toHaveProperty('appArmorProfile');
    const rd = { seccompProfile: { type: 'RuntimeDefault' } };
    expect(weakerThanBundle(container(rd), {}, notEnforced)).toEqual([]);
    expect(weakerThanBundle(container({ ...rd, appArmorProfile: { type: 'Localhost', localhostProfile: 'cerro-torre-app-0123456789ab' } }), {}, notEnforced)).toEqual([]);
    expect(weakerThanBundle(container({ ...rd, appArmorProfile: { type: 'Localhost', localhostProfile: 'unconfined-ish' } }), {}, notEnforced)).toEqual([
      'appArmorProfile must be RuntimeDefault, unset or Localhost cerro-torre-app-0123456789ab (the bundle\'s, not required where the nodes are not said to enforce AppArmor), not Localhost unconfined-ish',
    ]);
    expect(weakerThanBundle(container({ ...rd, appArmorProfile: { type: 'Unconfined' } }), {}, notEnforced)).toHaveLength(1);
  });
});

