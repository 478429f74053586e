import { Router, type Request, type Response } from 'express';
import { join } from 'node:path';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { sendError } from '../http-error.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { BundleFactsCache } from './bundle-facts-cache.js';
import type { Db } from '../store/db.js';
import { containerAlerts } from './container-alerts.js';
import { HostCache, type HostRow } from './host-cache.js';
import { limitMessage, pageLimit } from './page.js';
import { NAME } from '../../src/core/name.js';
import { DEPLOY_STATUSES } from '../../src/protocol/deploy-status.js';
import { FINAL } from '../deploy/status.js';
import { hostDrift, isUndeclared } from './drift.js';

type Row = Record<string, string | number | null>;
/** Not final: on its way (error is retried). One list of statuses (src/protocol/deploy-status.ts). */
const PROGRESSING: ReadonlySet<string> = new Set(DEPLOY_STATUSES.filter((s) => !FINAL.has(s)));
const iso = (ms: unknown) => new Date(Number(ms)).toISOString();

/** Apps × environments one overview page covers at most (its cost is one index probe or two per cell). */
export const MAX_OVERVIEW_CELLS = 5_000;



/**
 * The environments that have deployments: a loose index scan (one index probe per environment)
 * rather than a DISTINCT over the whole history. Same SQL on SQLite and PostgreSQL.
 */
async function distinctEnvironments(db: Db): Promise<string[]> {
  const rows = await db.query<{ environment: string | null }>(
    `WITH RECURSIVE e (environment) AS (
       SELECT MIN(environment) FROM deployments
       UNION ALL SELECT (SELECT MIN(d.environment) FROM deployments d WHERE d.environment > e.environment) FROM e WHERE e.environment IS NOT NULL)
     SELECT environment FROM e WHERE environment IS NOT NULL`,
  );
  return rows.map((r) => String(r.environment));
}


/**
 * What the dashboard's pages need beyond the resource routes: the environments × apps grid (one
 * page of apps at a time, so its cost does not grow with history), and one deployment's evidence.
 */
export function dashboardRoutes(ctx: ServerContext): Router {
  const r = Router();
  const bundleFacts = new BundleFactsCache(join(ctx.config.dataDir, 'bundles'));
  const read = requirePermission(ctx.db, ctx.oidc, 'read');
  const hostCache = new HostCache();

  r.get('/api/v1/overview', read, async (req: Request, res: Response) => {
    const environments = await distinctEnvironments(ctx.db);
    // The cost is the page's cells, not its apps (500 apps × 50 environments held the event loop
    // for seconds): a page has at most MAX_OVERVIEW_CELLS apps × environments, at least one app;
    // `limit` in the answer is the page size used, and `next` continues from there.
    const asked = pageLimit(req.query.limit, 100, 500);
    if (asked === 'bad') return sendError(res, 400, 'BAD_REQUEST', limitMessage(500));
    const limit = Math.max(1, Math.min(asked, Math.floor(MAX_OVERVIEW_CELLS / Math.max(1, environments.length))));
    // `app=`: that app alone (its page), however many others a search for its name would match.
    const only = typeof req.query.app === 'string' && NAME.test(req.query.app) ? req.query.app : undefined;
    const withHosts = req.query.hosts === '1';
    const after = typeof req.query.after === 'string' && NAME.test(req.query.after) ? req.query.after : '';
    const q = typeof req.query.q === 'string' ? req.query.q.slice(0, 63).replace(/[^a-z0-9._-]/g, '') : '';
    const params: unknown[] = [after];
    if (q) params.push(`%${q}%`);
    if (only) params.push(only);
    const apps = (await ctx.db.query<{ app: string }>(
      `SELECT DISTINCT app FROM deployments WHERE app > ? ${q ? 'AND app LIKE ?' : ''} ${only ? 'AND app = ?' : ''} ORDER BY app LIMIT ${limit + 1}`, params,
    )).map((a) => a.app);
    const next = apps.length > limit ? apps[limit - 1] : null;
    const page = apps.slice(0, limit);
    if (page.length === 0) return void res.json({ environments, apps: [], next: null, limit });
    // The page's (app, environment) cells that have deployments, found by a loose index scan per
    // app (one probe of the (app, environment, …) index per cell), then each cell's newest row by
    // one more probe: the cost is the page's, whatever the history's length. Only the page's apps
    // are bound (at most 500 parameters): one parameter pair per (app, environment) of every
    // environment known passed SQLite's 32,766 bound variables with a few hundred environments.
    const cellList = `WITH RECURSIVE a (app) AS (VALUES ${page.map(() => '(?)').join(', ')}),
       c (app, environment) AS (
         SELECT a.app, (SELECT MIN(d.environment) FROM deployments d WHERE d.app = a.app) FROM a
         UNION ALL SELECT c.app, (SELECT MIN(d.environment) FROM deployments d WHERE d.app = c.app AND d.environment > c.environment) FROM c WHERE c.environment IS NOT NULL)`;
    const newest = (status: string) =>
      `(SELECT x.id FROM deployments x WHERE x.app = c.app AND x.environment = c.environment${status} ORDER BY x.created_at DESC, x.id DESC LIMIT 1)`;
    const latest = await ctx.db.query<Row>(
      `${cellList} SELECT d.id, d.environment, d.app, d.status, d.reason, d.commit_sha, d.created_at, d.updated_at FROM c JOIN deployments d ON d.id = ${newest('')} WHERE c.environment IS NOT NULL`, page,
    );
    const live = await ctx.db.query<Row>(
      `${cellList} SELECT d.id, d.environment, d.app, d.image_digest, d.hosts, d.created_at, d.suspended, d.commit_sha FROM c JOIN deployments d ON d.id = ${newest(` AND x.status = 'succeeded'`)} WHERE c.environment IS NOT NULL`, page,
    );
    const hosts = await hostCache.read(ctx.db);
    const declared = await ctx.declared?.();
    const liveBy = new Map(live.map((l) => [`${l.environment}/${l.app}`, l]));
    const cells = new Map<string, Record<string, unknown>>();
    for (const d of latest) {
      const key = `${d.environment}/${d.app}`;
      const l = liveBy.get(key);
      const suspended = Number(l?.suspended ?? 0) === 1;
      const runtime = l ? runtimeOf(hosts, String(d.environment), String(d.app), String(l.image_digest), JSON.parse(String(l.hosts ?? '{}')), suspended) : null;
      // As GET /api/v1/drift judges it (server/routes/drift.ts): an app the desired state removed
      // or renamed is out of sync while a host still holds its container, and in sync once none does.
      const gone = l ? isUndeclared(declared, l) : false;
      const sync = PROGRESSING.has(String(d.status)) ? 'progressing'
        : gone ? (runtime?.holding ? 'out-of-sync' : 'in-sync')
        : d.status === 'succeeded' && runtime && runtime.drift === 0 ? 'in-sync' : 'out-of-sync';
      cells.set(key, {
        last: { id: d.id, status: d.status, reason: d.reason, commit: d.commit_sha, createdAt: iso(d.created_at), updatedAt: iso(d.updated_at) },
        live: l ? { id: l.id, imageDigest: l.image_digest } : null,
        sync,
        health: runtime?.health ?? 'unknown',
        // Desired state `suspended: true`: in sync when every host keeps it stopped.
        suspended,
        // Removed or renamed in the desired state in force (GET /api/v1/drift lists it under `undeclared`).
        undeclared: gone,
        // The container's name on every host (src/protocol/container-id.ts): for its log.
        container: containerIdFor(String(d.environment), String(d.app)),
        // Which host runs what (the App page asks for it; the grid does not show it).
        ...(withHosts ? { hosts: runtime?.hosts ?? [] } : {}),
      });
    }
    res.json({
      environments,
      apps: page.map((app) => ({ app, environments: Object.fromEntries(environments.filter((e) => cells.has(`${e}/${app}`)).map((e) => [e, cells.get(`${e}/${app}`)])) })),
      next,
      limit,
    });
  });

  r.get('/api/v1/deployments/:id/evidence', read, async (req: Request, res: Response) => {
    const [d] = await ctx.db.query<Row>('SELECT id, environment, app, image_digest, bundle_digest, evidence, hosts FROM deployments WHERE id = ?', [String(req.params.id)]);
    if (!d) return sendError(res, 404, 'NOT_FOUND', 'no such deployment');
    // The bundle's own security files (seccomp, AppArmor, monitor) as the hosts enforce them.
    const bundle = await bundleFacts.get(d.bundle_digest);
    const container = containerIdFor(String(d.environment), String(d.app));
    const alerts = await containerAlerts(ctx.db, String(d.environment), JSON.parse(String(d.hosts)) as Record<string, string>, container);
    res.json({
      id: d.id, environment: d.environment, app: d.app, imageDigest: d.image_digest, bundleDigest: d.bundle_digest, container,
      evidence: d.evidence ? JSON.parse(String(d.evidence)) : null,
      bundle,
      alerts,
    });
  });

  return r;
}

/** Which hosts run this app's live bundle, how many drift from it, and its health. */
function runtimeOf(hosts: HostRow[], environment: string, app: string, digest: string, selector: Record<string, string>, suspended = false) {
  const id = containerIdFor(environment, app);
  const out: { hostId: string; host: string; imageDigest: string | null; state: string; health: string | null }[] = [];
  let drift = 0;
  // Hosts holding its container, selected or not (an undeclared app's count, as drift counts them).
  const holding = hosts.filter((h) => { const c = h.containers.get(id); return c && c.state !== 'removed'; }).length;
  for (const h of hosts) {
    if (!Object.entries(selector).every(([k, v]) => h.labels[k] === v)) continue;
    const c = h.containers.get(id);
    out.push({ hostId: h.id, host: h.name, imageDigest: c?.imageDigest ?? null, state: c?.suspended ? 'suspended' : c?.state ?? 'missing', health: c?.health ?? null });
    if (hostDrift(c, digest, suspended)) drift++;
  }
  if (suspended) return { hosts: out, drift, holding, health: 'suspended' };
  // Health checks (when hosts report them) win; otherwise ('none': no check declared) the
  // container's state stands in.
  const states = out.map((o) => (o.health && o.health !== 'none' ? o.health : o.state === 'running' ? 'healthy' : 'degraded'));
  const health = states.length === 0 ? 'unknown' : states.every((s) => s === 'healthy') ? 'healthy' : states.some((s) => s === 'healthy') ? 'degraded' : states[0];
  return { hosts: out, drift, holding, health };
}
