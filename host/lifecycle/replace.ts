import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { OciConfig } from '../enforce/types.js';
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
}

export async function savePrevious(rec: ContainerRecord, assignedPath: string): Promise<Previous | undefined> {
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
  return { config, appName: rec.appName, imageDigest: rec.imageDigest, rootfs: config.root.path, assigned, bundleDigest, wasRunning: rec.status === 'running' || rec.status === 'paused' };
}

/**
 * Puts the previous container back: removes the failed new one (its record, bundle and root
 * filesystem), creates the old one from its saved config and starts it if it was running.
 */
export async function restorePrevious(runtime: RuncRuntime, id: string, prev: Previous, assignedPath: string, failedRootfs: string): Promise<ContainerRecord> {
  await runtime.delete(id, { force: true, purge: true }).catch(() => undefined);
  if (failedRootfs !== prev.rootfs) await rm(failedRootfs, { recursive: true, force: true });
  await runtime.create(id, prev.config, { appName: prev.appName ?? undefined, imageDigest: prev.imageDigest ?? undefined });
  if (prev.assigned) await writeFile(assignedPath, prev.assigned, { mode: 0o600 });
  return prev.wasRunning ? runtime.start(id) : runtime.state(id);
}
