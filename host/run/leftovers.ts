import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { NetworkManager, findNetavark } from '../network/index.js';
import { readNetworkSettings } from '../network/settings.js';
import type { RuncRuntime } from '../runtime/runc.js';
import { claimedNames, claimState, takeOverStaleClaim } from './claim.js';

/**
 * What a `ct run` killed with SIGKILL leaves under its name (its clean-up never ran): a stopped
 * container's record and bundle, a network attachment, a root filesystem — partial when it was
 * killed unpacking — and its claim. Cleared by the next `ct run` that holds the name (claim.ts);
 * a container that runs (its app outlived the run, or `ct host start` started it again) is never
 * touched: `ct host rm` is the operator's way to end it.
 */
export class Leftovers {
  constructor(private readonly stateDir: string, private readonly runtime: RuncRuntime, private readonly network?: NetworkManager) {}

  /** Whether a container of that name runs (or is paused) here. */
  async running(id: string): Promise<boolean> {
    const rec = this.runtime.store.get(id);
    if (!rec || rec.status === 'removed') return false;
    const now = await this.runtime.state(id);
    return now.status === 'running' || now.status === 'paused';
  }

  /** Clears what is left under a name this process holds; false (nothing touched) when its container runs. */
  async clear(id: string): Promise<boolean> {
    if (await this.running(id)) return false;
    const rec = this.runtime.store.get(id);
    if (rec && rec.status !== 'removed') {
      await this.runtime.delete(id, { force: true, purge: true });
      this.runtime.store.forget(id);
    }
    await this.detach(id);
    await rm(join(this.stateDir, 'rootfs', id), { recursive: true, force: true });
    return true;
  }

  /** Clears every other name whose run was killed and whose container does not run; best effort. */
  async sweep(claims: string, except: string): Promise<void> {
    for (const name of await claimedNames(claims)) {
      if (name === except) continue;
      try {
        if ((await claimState(join(claims, name))).state !== 'gone' || (await this.running(name))) continue;
        if (!(await takeOverStaleClaim(join(claims, name)))) continue;
        await this.clear(name);
        await rm(join(claims, name), { recursive: true, force: true });
      } catch {
        // Left for the next run: this one goes on with its own.
      }
    }
  }

  /** Its network attachment, torn down with the settings it was made with (this run's, else those saved beside the state). */
  private async detach(id: string): Promise<void> {
    if (process.getuid?.() !== 0) return;
    if (this.network) return this.network.detach(id).catch(() => undefined);
    const s = await readNetworkSettings(this.stateDir);
    if (!s) return;
    const network = new NetworkManager({ stateDir: this.stateDir, subnetBase: s.subnetBase, bridgePrefix: s.bridgePrefix, paths: s.netavarkDir ? await findNetavark([s.netavarkDir]) : undefined });
    try {
      await network.detach(id).catch(() => undefined);
    } finally {
      network.close();
    }
  }
}
