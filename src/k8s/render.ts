/**
 * `ct k8s render`: Kubernetes objects for a verified bundle.
 *
 * - a cluster-scoped SPO `SeccompProfile` (security-profiles-operator.x-k8s.io/v1) with the
 *   bundle's signed security/seccomp.json, installed by SPO on every node as
 *   `operator/<name>.json`;
 * - a cluster-scoped SPO `AppArmorProfile` (v1alpha1) with the bundle's AppArmor text in SPO's
 *   abstract form (apparmor-abstract.ts);
 * - a Deployment running the digest-pinned image under those profiles, with the manifest's
 *   command, env, ports, user and read-only root file system, health check (a readiness probe),
 *   resources and stop grace period (render-runtime.ts), and the bundle digest as an
 *   annotation (the admission webhook judges the image digest; the annotation tells people which
 *   signed bundle that was).
 */
import { CtError } from '../core/errors.js';
import { sanitizeAppName } from '../profiles/apparmor/names.js';
import type { BundleFacts } from '../policy/types.js';
import { toAbstract } from './apparmor-abstract.js';
import { bundleProfiles, desiredSecurityContext } from './profiles.js';
import { renderLifecycle } from './render-runtime.js';

export const SPO_GROUP = 'security-profiles-operator.x-k8s.io';
export const ANNOTATIONS = {
  bundleDigest: 'cerro-torre.dev/bundle-digest',
  imageDigest: 'cerro-torre.dev/image-digest',
  bundle: 'cerro-torre.dev/bundle',
} as const;

export interface RenderInput {
  facts: BundleFacts;
  imageDigest: string;
  bundleDigest: string;
  /** `registry/repository` the image is pulled from (pinned here by digest). */
  repository: string;
  app?: string;
  namespace?: string;
  replicas?: number;
  /** Accept an AppArmor profile whose rules SPO's abstract form cannot all express. */
  allowPartialAppArmor?: boolean;
  /**
   * The nodes enforce AppArmor (default true). False: no AppArmorProfile and no appArmorProfile
   * (the kubelet refuses a pod asking for one on nodes without AppArmor), as the admission
   * webhooks do without `--nodes-apparmor`; a warning says the bundle's profile was left out.
   */
  nodesAppArmor?: boolean;
}

export interface Rendered {
  objects: Record<string, unknown>[];
  warnings: string[];
}

type Obj = Record<string, unknown>;

const SECCOMP_SYSCALL_KEYS = ['names', 'action', 'errnoRet', 'args'] as const;

/** OCI linux.seccomp → SPO SeccompProfile spec; what SPO cannot express is refused, not dropped. */
function seccompSpec(oci: unknown): Obj {
  if (typeof oci !== 'object' || oci === null) throw new CtError('PROFILE_INVALID', 'security/seccomp.json is not an object', {});
  const s = oci as Obj;
  const errno = s.defaultErrnoRet;
  // SPO has no defaultErrnoRet: the runtime's default for ERRNO is EPERM (1), the only value that renders the same.
  if (errno !== undefined && errno !== 1) throw new CtError('PROFILE_INVALID', `seccomp defaultErrnoRet ${String(errno)} cannot be expressed in an SPO SeccompProfile (only the default EPERM)`, {});
  if (s.listenerPath !== undefined) throw new CtError('PROFILE_INVALID', 'seccomp listenerPath is not rendered for Kubernetes (SPO restricts it to its own agent)', {});
  const spec: Obj = { defaultAction: s.defaultAction };
  if (Array.isArray(s.architectures) && s.architectures.length) spec.architectures = s.architectures;
  if (Array.isArray(s.flags) && s.flags.length) spec.flags = s.flags;
  if (Array.isArray(s.syscalls)) {
    spec.syscalls = s.syscalls.map((r) => {
      const rule = r as Obj;
      const out: Obj = {};
      for (const k of SECCOMP_SYSCALL_KEYS) if (rule[k] !== undefined) out[k] = rule[k];
      return out;
    });
  }
  return spec;
}

/** Kubernetes needs numeric ids; a user name can only become runAsNonRoot (set by desiredSecurityContext). */
function userWarning(p: ReturnType<typeof bundleProfiles>, warnings: string[]): void {
  if (p.user && p.user.uid === undefined && p.user.nonRoot) warnings.push(`[runtime] user ${JSON.stringify(p.user.spec)} is a name: Kubernetes needs numeric ids, runAsNonRoot is set instead`);
}

function ports(list: string[] | undefined): Obj[] | undefined {
  if (!list?.length) return undefined;
  return list.map((p) => {
    const [num, proto = 'tcp'] = p.split('/');
    return { containerPort: Number(num), protocol: proto.toUpperCase() };
  });
}

export function renderK8s(input: RenderInput): Rendered {
  const warnings: string[] = [];
  const { facts } = input;
  const app = sanitizeAppName(input.app ?? facts.name ?? 'app');
  const profiles = bundleProfiles(facts, input.imageDigest, { nodesAppArmor: input.nodesAppArmor !== false });
  if (profiles.apparmorNotEnforced) warnings.push(`the bundle's AppArmor profile ${profiles.apparmorNotEnforced} is not rendered: the nodes are said not to enforce AppArmor (--no-apparmor)`);
  const labels = { 'app.kubernetes.io/name': app, 'app.kubernetes.io/managed-by': 'cerro-torre' };
  const annotations = { [ANNOTATIONS.bundleDigest]: input.bundleDigest, [ANNOTATIONS.imageDigest]: input.imageDigest, [ANNOTATIONS.bundle]: `${facts.name ?? app}:${facts.version ?? ''}` };
  const objects: Obj[] = [];
  if (profiles.seccomp) {
    objects.push({ apiVersion: `${SPO_GROUP}/v1`, kind: 'SeccompProfile', metadata: { name: profiles.seccomp, labels, annotations }, spec: seccompSpec(facts.security?.seccomp) });
  }
  if (profiles.apparmor) {
    const t = toAbstract(facts.security?.apparmor ?? '');
    if (t.untranslated.length > 0) {
      const list = t.untranslated.slice(0, 10).map((r) => JSON.stringify(r.slice(0, 120))).join(', ');
      if (!input.allowPartialAppArmor) throw new CtError('PROFILE_INVALID', `security/apparmor has ${t.untranslated.length} rules that SPO's AppArmorProfile cannot express: ${list} (--allow-partial-apparmor renders the rest)`, { untranslated: t.untranslated.length });
      warnings.push(`AppArmorProfile ${profiles.apparmor}: ${t.untranslated.length} rules not expressible in SPO's abstract form were left out: ${list}`);
    }
    objects.push({ apiVersion: `${SPO_GROUP}/v1alpha1`, kind: 'AppArmorProfile', metadata: { name: profiles.apparmor, labels, annotations }, spec: { abstract: t.abstract } });
  }
  const rt = facts.runtime ?? {};
  userWarning(profiles, warnings);
  const lifecycle = renderLifecycle(rt, warnings);
  const container: Obj = {
    name: app,
    image: `${input.repository}@${input.imageDigest}`,
    ...(Array.isArray(rt.command) && rt.command.length ? { command: rt.command } : {}),
    ...(typeof rt.workdir === 'string' ? { workingDir: rt.workdir } : {}),
    ...(rt.env && typeof rt.env === 'object' ? { env: Object.entries(rt.env as Record<string, string>).map(([name, value]) => ({ name, value })) } : {}),
    ...(ports(rt.ports as string[] | undefined) ? { ports: ports(rt.ports as string[]) } : {}),
    ...lifecycle.container,
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: rt.read_only_rootfs === true,
      // What the mutating webhook sets (capabilities: ALL dropped, the manifest's added; the
      // profiles, user, no_new_privs): a rendered Deployment passes admission as it is. Render has
      // no policies: where they allow fewer capabilities than the manifest asks, the mutating
      // webhook narrows `add` to the granted ones (profiles.ts, desiredCapabilities).
      ...desiredSecurityContext(profiles),
    },
  };
  objects.push({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: app, ...(input.namespace ? { namespace: input.namespace } : {}), labels, annotations },
    spec: {
      replicas: input.replicas ?? 1,
      selector: { matchLabels: { 'app.kubernetes.io/name': app } },
      template: {
        metadata: { labels, annotations },
        spec: {
          automountServiceAccountToken: false,
          ...(rt.network === 'host' ? { hostNetwork: true } : {}),
          ...lifecycle.pod,
          containers: [container],
        },
      },
    },
  });
  return { objects, warnings };
}
