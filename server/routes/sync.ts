import { Router, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { actor, recordAudit } from '../audit.js';

/**
 * `POST /api/v1/sync`: reconcile the desired state now (Argo CD's "sync"), as a webhook would;
 * operators and admins; audited with who asked.
 */
export function syncRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.post('/api/v1/sync', requirePermission(ctx.db, ctx.oidc, 'deploy'), async (req: Request, res: Response) => {
    const deliveryId = randomUUID();
    await ctx.onTrigger({ source: 'api', event: 'sync', deliveryId, repository: ctx.config.desiredState?.repo ?? '' });
    await recordAudit(ctx.db, 'api.sync', null, { principal: actor(req.principal), trigger: deliveryId });
    res.status(202).json({ queued: Boolean(ctx.config.desiredState), trigger: deliveryId });
  });
  return r;
}
