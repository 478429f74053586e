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
export async function computeDrift(ctx: ServerContext, suspendedOut: SuspendedItem[] = [], hostCache = new HostCache()): Promise<DriftItem[]> {
  // The newest succeeded row of each (environment, app) only (a loose index scan), not every
  // succeeded deployment ever; each host's inventory parsed once (and again only when it
  // changed), not once per app: 300 apps × 100 hosts parsed 30,000 inventories a request.
  const live = await liveRows<{ environment: string; app: string; image_digest: string; hosts: string; created_at: number; suspended: number }>(ctx.db, ['environment', 'app', 'image_digest', 'hosts', 'suspended']);
  const hosts = await hostCache.read(ctx.db);
  const out: DriftItem[] = [];
  for (const d of live) {
    const selector = JSON.parse(d.hosts) as Record<string, string>;
    // Containers are named per environment and app (src/protocol/container-id.ts).
    const id = containerIdFor(d.environment, d.app);
    const suspended = Number(d.suspended ?? 0) === 1;
    for (const h of hosts) {
      if (!Object.entries(selector).every(([k, v]) => h.labels[k] === v)) continue;
      const c = h.containers.get(id);
      const base = { environment: d.environment, app: d.app, host: h.name, desired: d.image_digest };
      if (suspended) suspendedOut.push({ environment: d.environment, app: d.app, host: h.name, state: c?.suspended ? 'suspended' : c?.state ?? 'missing' });
      if (!c) out.push({ ...base, actual: null, reason: 'MISSING' });
      else if (c.imageDigest !== d.image_digest) out.push({ ...base, actual: { imageDigest: c.imageDigest, state: c.state }, reason: 'WRONG_IMAGE' });
      else if (suspended ? !c.suspended : c.state !== 'running') out.push({ ...base, actual: { imageDigest: c.imageDigest, state: c.suspended ? 'suspended' : c.state }, reason: suspended ? 'NOT_SUSPENDED' : 'NOT_RUNNING' });
    }
  }
  return out;
}

export function driftRoutes(ctx: ServerContext): Router {
  const r = Router();
  const hostCache = new HostCache();
  r.get('/api/v1/drift', requirePermission(ctx.db, ctx.oidc, 'read'), async (_req, res) => {
    const suspended: SuspendedItem[] = [];
    const drift = await computeDrift(ctx, suspended, hostCache);
    res.json({ inSync: drift.length === 0, drift, suspended });
  });
  return r;
}
