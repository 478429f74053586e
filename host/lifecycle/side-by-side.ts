import { readFile, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { savedHealthcheck, type HealthcheckSpec } from '../../src/bundle/runtime-extras.js';
import type { OciConfig } from '../enforce/types.js';
import type { AttachRequest, NetworkManager, PublishedPort } from '../network/index.js';
import { attachNetwork } from '../agent/network-hook.js';
import { waitHealthy } from '../health/gate.js';
import { drain } from './drain.js';
import { endAll, recoveryFailed, type LeftReplace } from './left-replace.js';
import type { RuncRuntime } from '../runtime/runc.js';
import type { ContainerRecord } from '../runtime/state.js';

/**
 * Zero-loss replacement of an app on a bridge network, the way kube-proxy (or Podman behind a
 * proxy) does it: the new bundle runs BESIDE the old one, under its own runc id, with its own
 * bridge address and no published port; it is health-checked on that address; once healthy the
 * app's published ports move to it in one atomic rewrite of the DNAT rules (host/network/ports.ts:
 * connections already made keep their conntrack entry and so the old container), the old one is
 * drained (a short pause for requests in flight), stopped (SIGTERM, grace, SIGKILL) and removed,
 * and the new one takes the app's id (ContainerStore.adopt: same runc id, the app's name). An
 * unhealthy new bundle is removed and the old one never stopped serving.
 */

/**
 * The runc id of the new container: the app's id and a short stamp (runc ids are at most 64
 * characters; a long app id keeps its head and its hash). Never an app id: those end in 10 hex
 * digits after a dash (src/protocol/container-id.ts), these in a dot and the stamp.
 */
export function candidateId(id: string, now = Date.now()): string {
  const base = id.length <= 58 ? id : `${id.slice(0, 47)}${id.slice(-11)}`;
  return `${base}.${now.toString(36).slice(-5)}`;
}

export interface SideBySide {
  runtime: RuncRuntime;
  network: NetworkManager;
  /** The app's container id (the running old one). */
  id: string;
  candidate: string;
  config: OciConfig;
  create: { appName: string; imageDigest: string };
  attach: Omit<AttachRequest, 'containerId' | 'ports'>;
  /** The ports the app publishes from now on (they move from the old container to the new one at the switch). */
  ports: readonly PublishedPort[];
  healthcheck?: HealthcheckSpec;
  /** Least time between the port switch and SIGTERM to the old container (requests in flight end). */
  drainMs: number;
  /** Most time to wait for the old container's live connections (conntrack) to end (drain.ts). */
  maxDrainMs: number;
  /** The old container's grace period between SIGTERM and SIGKILL. */
  graceMs: number;
  /** Called once the ports have moved (tests catch the moment to kill the agent). */
  onSwitched?: () => void;
}

export type SideBySideResult =
  | { state: 'switched'; rec: ContainerRecord }
  | { state: 'not-started'; error: unknown }
  | { state: 'unhealthy'; rec: ContainerRecord; detail?: string; exitReason: string | null };

/** Removes a new container that will not serve: its container, bundle, root filesystem and network. */
export async function discardCandidate(runtime: RuncRuntime, network: NetworkManager, candidate: string): Promise<void> {
  const rec = runtime.store.get(candidate);
  const rootfs = rec ? await readFile(join(rec.bundleDir, 'config.json'), 'utf8').then((t) => (JSON.parse(t) as OciConfig).root.path, () => undefined) : undefined;
  if (rec && rec.status !== 'removed') await runtime.delete(candidate, { force: true, purge: true }).catch(() => undefined);
  runtime.store.forget(candidate);
  await network.detach(rec?.runcId ?? candidate);
  // By its name under this state directory's rootfs/ (where every unpack goes), whatever path the
  // config records: a recursive removal is never aimed elsewhere by a file in the state directory.
  // And only one of the replaced app's (rootfs/<app id>-<generation>), never another app's.
  const name = rootfs ? basename(rootfs) : '';
  const app = rec?.replaces ?? '';
  if (app && name.startsWith(`${app}-`) && /^\d+$/.test(name.slice(app.length + 1))) await rm(join(runtime.stateDir, 'rootfs', name), { recursive: true, force: true });
}

/** Stops and removes the old container once the ports left it; the new one takes the app's id. */
async function retire(runtime: RuncRuntime, network: NetworkManager, id: string, candidate: string, graceMs: number): Promise<ContainerRecord> {
  const old = runtime.store.get(id);
  if (old && old.status !== 'removed') {
    if (old.status === 'paused') await runtime.resume(id).catch(() => undefined);
    await runtime.stop(id, graceMs).catch(() => undefined);
    await runtime.delete(id, { force: true, purge: true }).catch(() => undefined);
    await network.detach(old.runcId);
  }
  return runtime.store.adopt(candidate, id);
}

/**
 * The new container's health check, kept in its own OCI config (config.json, written before runc
 * sees it): an agent restarted mid-check finds it there and checks again before the new container
 * may take the app over (recoverSideBySide).
 */
export const HEALTHCHECK_ANNOTATION = 'dev.cerro-torre.healthcheck';

export async function replaceSideBySide(o: SideBySide): Promise<SideBySideResult> {
  const { runtime, network } = o;
  const old = runtime.store.get(o.id)!;
  let rec: ContainerRecord;
  const config: OciConfig = o.healthcheck ? { ...o.config, annotations: { ...o.config.annotations, [HEALTHCHECK_ANNOTATION]: JSON.stringify(o.healthcheck) } } : o.config;
  try {
    await attachNetwork(network, config, { ...o.attach, containerId: o.candidate, ports: [] });
    rec = await runtime.run(o.candidate, config, { ...o.create, replaces: o.id });
  } catch (error) {
    await discardCandidate(runtime, network, o.candidate).catch(() => undefined);
    return { state: 'not-started', error };
  }
  const gate = rec.status === 'running' && o.healthcheck ? await waitHealthy(runtime, o.candidate, o.healthcheck) : undefined;
  if (gate) rec = runtime.store.get(o.candidate) ?? rec;
  if (rec.status !== 'running' || gate?.health === 'unhealthy') {
    const exitReason = gate?.exited?.exitReason ?? rec.exitReason;
    await discardCandidate(runtime, network, o.candidate);
    return { state: 'unhealthy', rec, detail: gate?.detail, exitReason };
  }
  // The switch: one transaction in the state, one atomic iptables-restore.
  try {
    await network.movePorts(old.runcId, rec.runcId, o.ports);
  } catch (error) {
    await discardCandidate(runtime, network, o.candidate).catch(() => undefined);
    return { state: 'not-started', error };
  }
  o.onSwitched?.();
  const oldAddress = network.attachment(old.runcId)?.address;
  if (oldAddress) await drain(oldAddress, { minMs: o.drainMs, maxMs: Math.max(o.drainMs, o.maxDrainMs) });
  return { state: 'switched', rec: await retire(runtime, network, o.id, o.candidate, o.graceMs) };
}

/**
 * After an agent restart: a side-by-side replace that was cut short ends with exactly one
 * container serving the app. While the old one still runs, it keeps (or gets back) the ports and
 * the new one is discarded (the server assigns the bundle again); when the old one was already
 * stopped, the new one has the ports and takes the app's id, but only once proven: a new
 * container whose check had not passed is checked again first, and one that fails it is
 * discarded and the old one started again. Returns what was done, for the log.
 */
export async function recoverSideBySide(runtime: RuncRuntime, network: NetworkManager | undefined): Promise<string[]> {
  return endAll(await leftSideBySide(runtime, network));
}

/**
 * The same, in two steps: what can be decided now is done now; a new container whose check must
 * be resumed is left pending (LeftReplace: the caller runs the check outside its turn).
 */
export async function leftSideBySide(runtime: RuncRuntime, network: NetworkManager | undefined): Promise<LeftReplace[]> {
  const done: LeftReplace[] = [];
  for (const c of runtime.store.list().filter((r) => r.replaces)) {
    // One that cannot be ended (netavark, runc) is logged with its code; the others still are.
    try {
      done.push(await leftCandidate(runtime, network, c));
    } catch (e) {
      done.push({ id: c.id, line: recoveryFailed(c.id, e) });
    }
  }
  return done;
}

async function leftCandidate(runtime: RuncRuntime, network: NetworkManager | undefined, c: ContainerRecord): Promise<LeftReplace> {
  const app = c.replaces!;
  const line = (text: string): LeftReplace => ({ id: c.id, line: `${c.id}: ${text}` });
  const cur = await runtime.state(c.id).catch(() => undefined);
  const old = runtime.store.get(app) && runtime.store.get(app)!.status !== 'removed' ? await runtime.state(app).catch(() => undefined) : undefined;
  const serving = (r?: ContainerRecord) => r?.status === 'running' || r?.status === 'paused';
  if (!network) {
    await runtime.delete(c.id, { force: true, purge: true }).catch(() => undefined);
    runtime.store.forget(c.id);
    return line('discarded');
  }
  if (serving(old) || !serving(cur)) {
    if (old) await network.movePorts(c.runcId, old.runcId).catch(() => undefined);
    await discardCandidate(runtime, network, c.id);
    return line(`discarded, ${app} keeps serving`);
  }
  const proof = await proofOf(c, cur!);
  const end = (p: Proof) => endCandidate(runtime, network, c, app, p);
  if (!('check' in proof)) return { id: c.id, line: await end(proof) };
  const hc = proof.check;
  const since = cur!.startedAt ? Date.parse(cur!.startedAt) : undefined;
  return {
    id: c.id, holds: [c.id, app],
    check: (signal) => waitHealthy(runtime, c.id, hc, undefined, { since, signal }),
    end: async (gate) => {
      if (gate.health === 'unhealthy') return end({ ok: false, detail: gate.detail });
      // Read again: it may have ended while its ending waited for the agent's turn.
      const now = await runtime.state(c.id).catch(() => undefined);
      return end(serving(now) ? { ok: true, checked: true } : { ok: false, code: 'RUNTIME_FAILED', detail: `it passed its health check, then was ${now?.status ?? 'gone'}` });
    },
  };
}

type Proof = { ok: true; checked: boolean } | { ok: false; detail: string; code?: 'RUNTIME_FAILED' };

/** The new container takes the app over (proven), or is discarded and the old one started again. */
async function endCandidate(runtime: RuncRuntime, network: NetworkManager, c: ContainerRecord, app: string, proof: Proof): Promise<string> {
  if (proof.ok) {
    const old = runtime.store.get(app);
    if (old && old.status !== 'removed') await network.movePorts(old.runcId, c.runcId);
    await retire(runtime, network, app, c.id, 1000);
    return `${c.id}: ${proof.checked ? 'passed its health check again and ' : ''}took over ${app}`;
  }
  // Never the app: the ports go back to the old container (they had not left it unless the
  // check had passed), and it runs again if it can.
  const stopped = runtime.store.get(app);
  if (stopped && stopped.status !== 'removed') await network.movePorts(c.runcId, stopped.runcId).catch(() => undefined);
  await discardCandidate(runtime, network, c.id);
  let back = `nothing of ${app} is left to start`;
  if (stopped && stopped.status !== 'removed') {
    back = await runtime.restart(app, 1000).then((r) => `${app} started again (${r.status})`, (e: unknown) => `${app} could not be started again: ${(e as Error).message}`);
  }
  return `${c.id}: ${proof.code ?? 'HEALTHCHECK_FAILED'} after the agent restart (${proof.detail}); discarded, ${back}`;
}

/**
 * Whether a new container may take the app over after an agent restart: it has no check to pass,
 * or its check had passed before the agent died (its health is kept in the container store), or
 * it passes one now (`check`: resumed by the caller, its start period counted from its start). An
 * unreadable check is no proof.
 */
async function proofOf(c: ContainerRecord, cur: ContainerRecord): Promise<Proof | { check: HealthcheckSpec }> {
  if (cur.health === 'healthy') return { ok: true, checked: false };
  let annotation: string | undefined;
  try {
    annotation = (JSON.parse(await readFile(join(c.bundleDir, 'config.json'), 'utf8')) as OciConfig).annotations?.[HEALTHCHECK_ANNOTATION];
  } catch {
    return { ok: false, detail: 'its OCI config cannot be read' };
  }
  if (annotation === undefined) return cur.health === 'none' ? { ok: true, checked: false } : { ok: false, detail: `its health was ${cur.health} and its check is unknown` };
  let hc: HealthcheckSpec | undefined;
  try {
    hc = savedHealthcheck(JSON.parse(annotation));
  } catch {
    hc = undefined;
  }
  if (!hc) return { ok: false, detail: 'its health check cannot be read' };
  return { check: hc };
}
