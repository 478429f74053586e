/**
 * "Stayed healthy": when a promotion's wait is over, every host the deployment went to still runs
 * it — the container of that environment/app is running this image, its health check (if any) is
 * not failing or still starting, it was not restarted since the deploy succeeded, and the host's
 * inventory is fresh. Anything unknown is not healthy (fail closed).
 */
import type { InventoryItem } from '../../src/protocol/messages.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import type { Db } from '../store/db.js';
import { hostLabels, isTarget, targetsOf } from '../deploy/host-targets.js';

/** Inventory arrives every 30 s: older than this and the host's answer is not known. */
const FRESH_MS = 90_000;

export type Health = { healthy: true; hosts: number } | { healthy: false; reason: string; transient: boolean };

interface HostRow { id: string; name: string; labels: string; containers: string; last_seen: number | null }

async function targetHosts(db: Db, environment: string, selector: Record<string, string>): Promise<HostRow[]> {
  const rows = await db.query<HostRow>('SELECT id, name, labels, containers, last_seen FROM hosts ORDER BY name');
  const targets = targetsOf(environment, selector);
  // A loop, not a closure per call, for every row (host-targets.ts isTarget).
  const out: HostRow[] = [];
  for (const r of rows) if (isTarget(targets, hostLabels(r.labels))) out.push(r);
  return out;
}

/** Restart counts of the deployment's container per host, now (compared at the end of the wait). */
export async function restartsNow(db: Db, d: { environment: string; app: string; hosts: string }): Promise<Record<string, number>> {
  const id = containerIdFor(d.environment, d.app);
  const out: Record<string, number> = {};
  for (const h of await targetHosts(db, d.environment, JSON.parse(d.hosts) as Record<string, string>)) {
    const c = (JSON.parse(h.containers) as InventoryItem[]).find((x) => x.id === id);
    out[h.id] = c?.restarts ?? 0;
  }
  return out;
}

export async function deploymentHealth(db: Db, d: { environment: string; app: string; hosts: string; image_digest: string | null }, restartsAtSuccess: Record<string, number>, now = Date.now()): Promise<Health> {
  const id = containerIdFor(d.environment, d.app);
  const hosts = await targetHosts(db, d.environment, JSON.parse(d.hosts) as Record<string, string>);
  if (hosts.length === 0) return { healthy: false, reason: 'no host of the environment matches the deployment any more', transient: false };
  for (const h of hosts) {
    if (!h.last_seen || now - Number(h.last_seen) > FRESH_MS) return { healthy: false, reason: `host ${h.name} has not reported its containers recently`, transient: true };
    const c = (JSON.parse(h.containers) as InventoryItem[]).find((x) => x.id === id);
    // The inventory may not yet report what the deploy just started: asked again (bounded by the queue's attempts).
    if (!c) return { healthy: false, reason: `host ${h.name} does not run ${d.environment}/${d.app}`, transient: true };
    if (c.imageDigest !== d.image_digest) return { healthy: false, reason: `host ${h.name} runs another image (${c.imageDigest ?? 'none'})`, transient: true };
    if (c.state !== 'running') return { healthy: false, reason: `on host ${h.name} the container is ${c.state}`, transient: false };
    if (c.health === 'unhealthy') return { healthy: false, reason: `on host ${h.name} the health check fails`, transient: false };
    if (c.health === 'starting') return { healthy: false, reason: `on host ${h.name} the health check has not passed yet`, transient: true };
    if ((c.restarts ?? 0) > (restartsAtSuccess[h.id] ?? 0)) return { healthy: false, reason: `on host ${h.name} the container restarted ${(c.restarts ?? 0) - (restartsAtSuccess[h.id] ?? 0)} time(s) since the deploy`, transient: false };
  }
  return { healthy: true, hosts: hosts.length };
}
