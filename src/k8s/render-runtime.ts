/**
 * The lifecycle parts of a manifest's `[runtime]` (runtime-extras.ts) as a Deployment's pod says
 * them, for `ct k8s render`: what a host does with them, a pod does too, and what a pod cannot do
 * is said in a warning, never dropped silently.
 *
 * - `healthcheck` → `readinessProbe`: a host reports the app running once a check passed and
 *   gates the deploy on it (it does not restart an app whose check fails later), as readiness
 *   gates a rollout; Kubernetes counts whole seconds, so fractions are rounded up (said).
 * - `resources.memory` / `cpus` → `resources.limits` (bytes; millicores, rounded up). `pids`: a
 *   pod's pid limit is the node's (the kubelet's `podPidsLimit`), not the pod's to ask: said.
 * - `stop_grace_period` → `terminationGracePeriodSeconds` (rounded up).
 * - `ulimits`: a pod has no rlimits (the runtime's defaults apply): said.
 * - `restart` other than `always`: a Deployment restarts its pods always: said.
 * - `network = "none"`, a host's default: a pod always has the cluster network; a NetworkPolicy
 *   denying all traffic is the nearest thing: said.
 */
import type { HealthcheckSpec, ResourcesSpec, UlimitsSpec } from '../bundle/runtime-extras.js';
import { isObj } from './workloads.js';

type Obj = Record<string, unknown>;

export interface RenderedLifecycle {
  /** Fields of the container. */
  container: Obj;
  /** Fields of the pod spec. */
  pod: Obj;
}

/** Whole seconds, at least `min`, rounded up; a rounding is said. */
function seconds(v: number, what: string, min: number, warnings: string[]): number {
  const s = Math.max(min, Math.ceil(v));
  if (s !== v) warnings.push(`${what} ${v} s is rendered as ${s} s (Kubernetes counts whole seconds${min > 0 ? `, at least ${min}` : ''})`);
  return s;
}

/**
 * The health check as a readiness probe. Its `start_period` is not rendered, and needs no warning:
 * on a host, failures within it do not count; a readiness probe's failures never restart the pod
 * either, they only keep it out of its Service until a check passes, which is what a starting app
 * is anyway (a startupProbe would add a restart after its failures, which the manifest does not ask).
 */
function probe(hc: HealthcheckSpec, warnings: string[]): Obj {
  const handler = hc.type === 'exec' ? { exec: { command: hc.command } } : hc.type === 'http' ? { httpGet: { path: hc.path ?? '/', port: hc.port } } : { tcpSocket: { port: hc.port } };
  return {
    ...handler,
    periodSeconds: seconds(hc.interval, 'healthcheck interval', 1, warnings),
    timeoutSeconds: seconds(hc.timeout, 'healthcheck timeout', 1, warnings),
    failureThreshold: hc.retries,
  };
}

function limits(r: ResourcesSpec, warnings: string[]): Obj | undefined {
  const out: Obj = {};
  if (r.memory !== undefined) out.memory = String(r.memory);
  // Rounded up to the millicore (Kubernetes' finest CPU unit), as a limit never below the manifest's.
  if (r.cpus !== undefined) out.cpu = `${Math.ceil(Math.round(r.cpus * 1e6) / 1e3)}m`;
  if (r.pids !== undefined) warnings.push(`resources.pids ${r.pids} is not rendered: a pod's pid limit is the node's (the kubelet's podPidsLimit)`);
  return Object.keys(out).length > 0 ? out : undefined;
}

/** What the manifest's lifecycle keys become in the pod; every one not expressible is in `warnings`. */
export function renderLifecycle(rt: Obj, warnings: string[]): RenderedLifecycle {
  const container: Obj = {};
  const pod: Obj = {};
  if (isObj(rt.healthcheck)) container.readinessProbe = probe(rt.healthcheck as unknown as HealthcheckSpec, warnings);
  if (isObj(rt.resources)) {
    const l = limits(rt.resources as ResourcesSpec, warnings);
    if (l) container.resources = { limits: l };
  }
  if (typeof rt.stop_grace_period === 'number') pod.terminationGracePeriodSeconds = seconds(rt.stop_grace_period, 'stop_grace_period', 0, warnings);
  if (isObj(rt.ulimits) && (rt.ulimits as UlimitsSpec).nofile) warnings.push('ulimits are not rendered: a pod has no rlimits of its own (the container runtime\'s defaults apply)');
  if (typeof rt.restart === 'string' && rt.restart !== 'always') warnings.push(`restart ${JSON.stringify(rt.restart)} is not rendered: a Deployment restarts its pods always`);
  // "none" is a host's default: a manifest that names no network runs with loopback only there.
  if ((rt.network ?? 'none') === 'none') warnings.push(`network "none"${rt.network === undefined ? ' (the default: the manifest names none)' : ''} is not rendered: a pod always has the cluster network; deny its traffic with a NetworkPolicy`);
  return { container, pod };
}
