import { Router, type Request, type Response } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { sendError } from '../http-error.js';
import { validateBody } from '../openapi.js';
import { liveDeployments } from '../deploy/live.js';
import type { PolicyStore } from '../../src/policy/store.js';
import { readPolicySources } from '../../src/policy/load.js';
import { parseDeployments } from '../../src/policy/diff.js';
import { decisionSummary, policyImpact, type PolicyProposal } from '../../src/policy/impact.js';
import { CtError } from '../../src/core/errors.js';

/** Rows of an impact answer: the live deployments a proposal would change are listed first. */
const MAX_ROWS = 500;

/** `/api/v1/policies`: the policy set in force, an authorised reload, and what a proposal would change. */
export function policyRoutes(ctx: ServerContext, store: PolicyStore, origin: () => { source: 'git' | 'directory'; commit: string | null } = () => ({ source: 'directory', commit: null })): Router {
  const r = Router();
  r.get('/api/v1/policies', requirePermission(ctx.db, ctx.oidc, 'read'), (_req, res) => {
    const set = store.current;
    const from = origin();
    res.json({
      loaded: Boolean(set),
      digest: set?.digest ?? null,
      // The policy repository's commit the set in force was loaded from (null: a directory).
      source: from.source,
      commit: set ? from.commit : null,
      policies: (set?.policies ?? []).map((p) => ({ name: p.name, digest: p.digest })),
    });
  });
  r.post('/api/v1/policies/reload', requirePermission(ctx.db, ctx.oidc, 'admin'), async (_req, res) => {
    const out = await store.reload();
    res.status(out.ok ? 200 : 422).json(out);
  });
  // A proposed change (files added, replaced or removed) judged against every live deployment.
  r.post('/api/v1/policies/impact', requirePermission(ctx.db, ctx.oidc, 'read'), validateBody('policyImpact'), async (req: Request, res: Response) => {
    const current = store.current;
    if (!current) return sendError(res, 503, 'NO_POLICY', 'no policy set is loaded');
    const live = await liveDeployments(ctx.db, typeof req.body.environment === 'string' ? req.body.environment : undefined);
    let out;
    try {
      const deployments = parseDeployments('(live deployments)', JSON.stringify({ deployments: live.filter((d) => d.evidence) }));
      out = policyImpact(current, await readPolicySources(store.paths), store.paths[0], req.body as PolicyProposal, deployments);
    } catch (e) {
      if (e instanceof CtError && e.code === 'USAGE') return sendError(res, 400, 'BAD_REQUEST', e.message);
      throw e;
    }
    if (!out.ok) return sendError(res, 422, 'POLICY_INVALID', 'the proposed policies do not compile', { issues: out.issues });
    const order = { 'now-denied': 0, 'now-allowed': 1, 'reasons-changed': 2, unchanged: 3 } as const;
    const rows = [...out.diff.rows].sort((a, b) => order[a.change] - order[b.change]).slice(0, MAX_ROWS);
    res.json({
      baseDigest: out.baseDigest,
      headDigest: out.headDigest,
      counts: out.diff.counts,
      policies: out.diff.policies,
      deployments: rows.map((row) => ({ id: row.id, environment: row.environment, app: row.app, imageDigest: row.imageDigest, change: row.change, before: decisionSummary(row.before), after: decisionSummary(row.after) })),
      truncated: out.diff.rows.length > MAX_ROWS,
    });
  });
  return r;
}
