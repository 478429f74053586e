import { Router, type Request, type Response } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { sendError } from '../http-error.js';
import { validateBody } from '../openapi.js';
import { liveDeployments } from '../deploy/live.js';
import type { PolicyStore } from '../../src/policy/store.js';
import { readPolicySources } from '../../src/policy/load.js';
import type { PolicyProposal } from '../../src/policy/impact.js';
import { impactSlot } from '../../src/policy/impact-thread.js';
import { CtError } from '../../src/core/errors.js';
import { actor, recordAudit } from '../audit.js';

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
  r.post('/api/v1/policies/reload', requirePermission(ctx.db, ctx.oidc, 'admin'), async (req, res) => {
    const out = await store.reload();
    // A reload can change every verdict: who asked, and what set came of it, is on record.
    await recordAudit(ctx.db, 'api.policies.reload', out.digest ?? null, { principal: actor(req.principal), ok: out.ok, digest: out.digest ?? null, issues: out.issues.length, code: out.error?.code ?? null });
    res.status(out.ok ? 200 : 422).json(out);
  });
  // A proposed change (files added, replaced or removed) judged against every live deployment, on
  // a thread of its own with a deadline (src/policy/impact-thread.ts): anyone who may read chooses
  // what it costs to compile and judge.
  r.post('/api/v1/policies/impact', requirePermission(ctx.db, ctx.oidc, 'read'), validateBody('policyImpact'), async (req: Request, res: Response) => {
    const current = store.current;
    if (!current) return sendError(res, 503, 'NO_POLICY', 'no policy set is loaded');
    let slot;
    try {
      slot = impactSlot();
    } catch (e) {
      if (e instanceof CtError && e.code === 'POLICY_IMPACT_BUSY') return sendError(res, 429, e.code, e.message);
      throw e;
    }
    // A client that goes away ends its judgement (and frees its slot); one gone already (while it
    // was being authenticated) is not judged at all.
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    if (res.closed || req.socket.destroyed) gone.abort();
    let out;
    try {
      const live = await liveDeployments(ctx.db, typeof req.body.environment === 'string' ? req.body.environment : undefined);
      const deploymentsJson = JSON.stringify({ deployments: live.filter((d) => d.evidence) });
      out = await slot.run({ base: await readPolicySources(store.paths), root: store.paths[0], proposal: req.body as PolicyProposal, deploymentsJson, now: Date.now(), currentDigest: current.digest }, gone.signal);
    } catch (e) {
      if (e instanceof CtError && e.code === 'USAGE') return sendError(res, 400, 'BAD_REQUEST', e.message);
      if (e instanceof CtError && e.code === 'POLICY_INVALID') return sendError(res, 422, e.code, e.message);
      if (e instanceof CtError && e.code === 'POLICY_IMPACT_TOO_LARGE') return sendError(res, 503, e.code, e.message);
      throw e;
    } finally {
      slot.release();
    }
    if ('stale' in out) return sendError(res, 409, 'POLICY_STALE', 'the policy files changed since the set in force was loaded: reload the policies, then preview again');
    if (!out.ok) return sendError(res, 422, 'POLICY_INVALID', 'the proposed policies do not compile', { issues: out.issues });
    res.json(out.body);
  });
  return r;
}
