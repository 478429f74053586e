import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OciConfig } from '../enforce/types.js';
import type { AttachRequest, NetworkManager } from '../network/index.js';
import type { RuncRuntime } from '../runtime/runc.js';
import type { ContainerRecord } from '../runtime/state.js';

/**
 * What ran before a replacement, kept until the new bundle is healthy: the OCI config the old
 * container was created with (its root filesystem directory is left in place until then), and
 * the record of which bundle it was. A replacement that fails its health check is rolled back by
 * creating the container again from exactly this config.
 */
export interface Previous {
  config: OciConfig;
  appName: string | null;
  imageDigest: string | null;
  rootfs: string;
  /** The assigned/<id>.json text of the old bundle (undefined when unknown). */
  assigned?: string;
  bundleDigest?: string;
  wasRunning: boolean;
  /**
   * Its bridge attachment (environment, app, published ports, egress), when it had one: the old
   * config names the netns and resolv.conf by container id, so a rollback attaches it again
   * (possibly at another address: aardvark-dns follows) and re-publishes the same ports.
   */
  network?: AttachRequest;
}

/** The root filesystem a container was created with (its config.json), or undefined. */
export async function rootfsOf(rec: ContainerRecord): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(join(rec.bundleDir, 'config.json'), 'utf8')) as { root: { path: string } }).root.path;
  } catch {
    return undefined;
  }
}

export async function savePrevious(rec: ContainerRecord, assignedPath: string, network?: NetworkManager): Promise<Previous | undefined> {
  let config: OciConfig;
  try {
    config = JSON.parse(await readFile(join(rec.bundleDir, 'config.json'), 'utf8')) as OciConfig;
  } catch {
    return undefined; // nothing to go back to
  }
  const assigned = await readFile(assignedPath, 'utf8').catch(() => undefined);
  let bundleDigest: string | undefined;
  try {
    bundleDigest = assigned ? (JSON.parse(assigned) as { bundleDigest?: string }).bundleDigest : undefined;
  } catch {
    bundleDigest = undefined;
  }
  const att = network?.attachment(rec.runcId);
  return {
    config, appName: rec.appName, imageDigest: rec.imageDigest, rootfs: config.root.path, assigned, bundleDigest, wasRunning: rec.status === 'running' || rec.status === 'paused',
    network: att ? { containerId: rec.runcId, environment: att.environment, app: att.app, ports: att.ports, egress: att.egress } : undefined,
  };
}

/**
 * Puts the previous container back: removes the failed new one (its record, bundle, root
 * filesystem and network), attaches the old one's network again with its ports, creates it from
 * its saved config and starts it if it was running (a stopped one keeps its network suspended).
 */
export async function restorePrevious(runtime: RuncRuntime, id: string, prev: Previous, assignedPath: string, failedRootfs: string, network?: NetworkManager): Promise<ContainerRecord> {
  await runtime.delete(id, { force: true, purge: true }).catch(() => undefined);
  if (failedRootfs !== prev.rootfs) await rm(failedRootfs, { recursive: true, force: true });
  await network?.detach(id);
  if (prev.network) {
    if (!network) throw new Error('the previous container was on a bridge network and this host has none');
    // It comes back under the app's id, in the namespace attach names now: its saved config may
    // name another (a container that had replaced another side by side ran under its own runc id;
    // one an earlier agent made has a namespace without its state directory's scope).
    const att = await network.attach({ ...prev.network, containerId: id });
    const ns = prev.config.linux.namespaces.find((n) => n.type === 'network');
    if (ns) ns.path = att.netnsPath;
    for (const m of prev.config.mounts) if (m.destination === '/etc/resolv.conf') m.source = att.resolvConf;
    // A config an earlier agent saved has IPv6 on in the namespace: off now (network/ipv6.ts).
    prev.config.linux.sysctl = { ...prev.config.linux.sysctl, ...att.sysctl };
    if (!prev.wasRunning) await network.suspend(id);
  }
  // Its cgroup as this runtime names the app's now (its own runc id's, or one without the scope, before).
  if (prev.config.linux.cgroupsPath) prev.config.linux.cgroupsPath = runtime.cgroupsPathFor(id);
  await runtime.create(id, prev.config, { appName: prev.appName ?? undefined, imageDigest: prev.imageDigest ?? undefined });
  if (prev.assigned) await writeFile(assignedPath, prev.assigned, { mode: 0o600 });
  return prev.wasRunning ? runtime.start(id) : runtime.state(id);
}
