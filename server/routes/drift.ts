import { Router } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { liveRows } from '../deploy/live.js';
import { HostCache } from './host-cache.js';

export interface DriftItem {
  environment: string;
  app: string;
  host: string;
  desired: string;
  actual: { imageDigest: string | null; state: string } | null;
  /** NOT_SUSPENDED: the desired state suspends the app and a host still runs it. */
  reason: 'MISSING' | 'WRONG_IMAGE' | 'NOT_RUNNING' | 'NOT_SUSPENDED';
}

/** An app the desired state suspends, as each host has it (in sync when stopped and held there). */
export interface SuspendedItem {
  environment: string;
  app: string;
  host: string;
  state: string;
}

/**
 * Drift: what hosts report (their container inventory) against what is desired (the latest
 * successful deployment of each environment/app, on every host its selector matches).
 */
export async function computeDrift(ctx: ServerContext, suspendedOut: SuspendedItem[] = [], hostCache = new HostCache(), declared?: ReadonlySet<string>, undeclaredOut: UndeclaredItem[] = []): Promise<DriftItem[]> {
  // The newest succeeded row of each (environment, app) only (a loose index scan), not every
  // succeeded deployment ever; each host's inventory parsed once (and again only when it
  // changed), not once per app: 300 apps × 100 hosts parsed 30,000 inventories a request.
  const live = await liveRows<{ id: string; environment: string; app: string; image_digest: string; hosts: string; created_at: number; suspended: number; commit_sha: string }>(ctx.db, ['environment', 'app', 'image_digest', 'hosts', 'suspended', 'commit_sha']);
  const hosts = await hostCache.read(ctx.db);
  const out: DriftItem[] = [];
  for (const d of live) {
    const selector = JSON.parse(d.hosts) as Record<string, string>;
    // Containers are named per environment and app (src/protocol/container-id.ts).
    const id = containerIdFor(d.environment, d.app);
    // Not desired any more: not compared (a removed container is no drift), listed while a host holds it.
    if (isUndeclared(declared, d)) {
      const holding = hosts.filter((h) => { const c = h.containers.get(id); return c && c.state !== 'removed'; }).map((h) => h.name);
      if (holding.length) undeclaredOut.push({ environment: d.environment, app: d.app, deploymentId: d.id, hosts: holding });
      continue;
    }
    const suspended = Number(d.suspended ?? 0) === 1;
    for (const h of hosts) {
      if (!Object.entries(selector).every(([k, v]) => h.labels[k] === v)) continue;
      const c = h.containers.get(id);
      const base = { environment: d.environment, app: d.app, host: h.name, desired: d.image_digest };
      if (suspended) suspendedOut.push({ environment: d.environment, app: d.app, host: h.name, state: c?.suspended ? 'suspended' : c?.state ?? 'missing' });
      const reason = hostDrift(c, d.image_digest, suspended);
      if (reason) out.push({ ...base, actual: c ? { imageDigest: c.imageDigest, state: c.suspended && reason !== 'WRONG_IMAGE' ? 'suspended' : c.state } : null, reason });
    }
  }
  return out;
}

/** How a host's container (undefined: it has none) drifts from the live deployment, or undefined when it does not. */
export function hostDrift(c: { imageDigest: string | null; state: string; suspended?: boolean } | undefined, digest: string, suspended: boolean): DriftItem['reason'] | undefined {
  if (!c) return 'MISSING';
  if (c.imageDigest !== digest) return 'WRONG_IMAGE';
  if (suspended ? !c.suspended : c.state !== 'running') return suspended ? 'NOT_SUSPENDED' : 'NOT_RUNNING';
  return undefined;
}

/**
 * True when the live deployment `d` was made by the desired state (its commit is a desired-state
 * commit id: API deploys are `api:…`, rollbacks `rollback:…`) and the desired state in force
 * (`declared`) no longer declares it (removed or renamed there). An API deploy is compared as
 * ever, whatever the desired state declares.
 */
export function isUndeclared(declared: ReadonlySet<string> | undefined, d: Partial<Record<'environment' | 'app' | 'commit_sha', unknown>>): boolean {
  return Boolean(declared) && /^[0-9a-f]{40,64}$/.test(String(d.commit_sha)) && !declared!.has(`${String(d.environment)}/${String(d.app)}`);
}

/** A live app the desired state deployed and no longer declares (removed or renamed there), on the hosts that still hold its container: nothing stops it. */
export interface UndeclaredItem {
  environment: string;
  app: string;
  deploymentId: string;
  hosts: string[];
}

/**
 * `ctx.declared`: the `environment/app` names of the desired state in force: live apps it deployed
 * and no longer declares are not compared; those a host still holds are listed as `undeclared`,
 * and are not in sync.
 */
export function driftRoutes(ctx: ServerContext): Router {
  const r = Router();
  const hostCache = new HostCache();
  r.get('/api/v1/drift', requirePermission(ctx.db, ctx.oidc, 'read'), async (_req, res) => {
    const suspended: SuspendedItem[] = [];
    const undeclared: UndeclaredItem[] = [];
    const drift = await computeDrift(ctx, suspended, hostCache, await ctx.declared?.(), undeclared);
    res.json({ inSync: drift.length === 0 && undeclared.length === 0, drift, suspended, undeclared });
  });
  return r;
}
