import { Router } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import type { InventoryItem } from '../../src/protocol/messages.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

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
export async function computeDrift(ctx: ServerContext, suspendedOut: SuspendedItem[] = []): Promise<DriftItem[]> {
  const deployments = await ctx.db.query<{ environment: string; app: string; image_digest: string; hosts: string; created_at: number; suspended: number }>(
    `SELECT environment, app, image_digest, hosts, created_at, suspended FROM deployments WHERE status = 'succeeded' ORDER BY created_at DESC`,
  );
  const live = new Map<string, (typeof deployments)[number]>();
  for (const d of deployments) if (!live.has(`${d.environment}/${d.app}`)) live.set(`${d.environment}/${d.app}`, d);
  const hosts = await ctx.db.query<{ name: string; labels: string; containers: string }>('SELECT name, labels, containers FROM hosts ORDER BY name');
  const out: DriftItem[] = [];
  for (const d of live.values()) {
    const selector = JSON.parse(d.hosts) as Record<string, string>;
    for (const h of hosts) {
      const labels = JSON.parse(h.labels) as Record<string, string>;
      if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) continue;
      // Containers are named per environment and app (src/protocol/container-id.ts).
      const id = containerIdFor(d.environment, d.app);
      const c = (JSON.parse(h.containers) as InventoryItem[]).find((x) => x.id === id);
      const base = { environment: d.environment, app: d.app, host: h.name, desired: d.image_digest };
      const suspended = Number(d.suspended ?? 0) === 1;
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
  r.get('/api/v1/drift', requirePermission(ctx.db, ctx.oidc, 'read'), async (_req, res) => {
    const suspended: SuspendedItem[] = [];
    const drift = await computeDrift(ctx, suspended);
    res.json({ inSync: drift.length === 0, drift, suspended });
  });
  return r;
}
