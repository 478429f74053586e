import { Router } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import type { PolicyStore } from '../../src/policy/store.js';

/** `/api/v1/policies`: the policy set in force, and an authorised reload. */
export function policyRoutes(ctx: ServerContext, store: PolicyStore): Router {
  const r = Router();
  r.get('/api/v1/policies', requirePermission(ctx.db, ctx.oidc, 'read'), (_req, res) => {
    const set = store.current;
    res.json({
      loaded: Boolean(set),
      digest: set?.digest ?? null,
      policies: (set?.policies ?? []).map((p) => ({ name: p.name, digest: p.digest })),
    });
  });
  r.post('/api/v1/policies/reload', requirePermission(ctx.db, ctx.oidc, 'admin'), async (_req, res) => {
    const out = await store.reload();
    res.status(out.ok ? 200 : 422).json(out);
  });
  return r;
}
