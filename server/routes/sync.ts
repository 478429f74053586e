import { Router, type Request, type Response } from 'express';
import { randomUUID } from 'node:crypto';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { actor, recordAudit } from '../audit.js';
import { withoutCredentials } from '../gitops/git.js';
import { terminalText } from '../../src/core/terminal.js';

/**
 * `GET /api/v1/sync`: what is applied. `POST /api/v1/sync`: reconcile the desired state now (Argo CD's "sync"), as a webhook would;
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
  /**
   * `GET /api/v1/sync`: the desired-state commit in force and the last reconcile (Argo CD's sync
   * status): a head refused for its content, its ancestry or its signature says so here, with why.
   */
  r.get('/api/v1/sync', requirePermission(ctx.db, ctx.oidc, 'read'), async (_req: Request, res: Response) => {
    const ds = ctx.config.desiredState;
    if (!ds) return void res.json({ configured: false, applied: null, last: null });
    const [applied] = await ctx.db.query<{ applied_sha: string; applied_at: number }>('SELECT applied_sha, applied_at FROM gitops_state WHERE repo = ?', [ds.repo]);
    const [last] = await ctx.db.query<{ commit_sha: string | null; previous_sha: string | null; outcome: string; message: string | null; trigger: string; time: number }>(
      'SELECT commit_sha, previous_sha, outcome, message, trigger, time FROM reconciles WHERE repo = ? ORDER BY time DESC LIMIT 1', [ds.repo],
    );
    // Every role reads this: the remote's token (if it carries one) is not shown, here or in a message.
    res.json({
      configured: true, repository: withoutCredentials(ds.repo), branch: ds.branch, path: ds.path,
      applied: applied ? { commit: applied.applied_sha, at: new Date(Number(applied.applied_at)).toISOString() } : null,
      last: last ? { commit: last.commit_sha, previous: last.previous_sha, outcome: last.outcome, message: last.message === null ? null : terminalText(withoutCredentials(last.message)), trigger: last.trigger, at: new Date(Number(last.time)).toISOString() } : null,
    });
  });
  return r;
}
