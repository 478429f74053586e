/**
 * Promotion over the API (and the MCP `promote` tool, which calls it): POST /api/v1/promotions
 * opens or updates the pull request that pins, in `to`, the bundle the live deployment of
 * `from`/`app` runs — the same call the server makes by itself after a `promotion:` rule's wait
 * (operators and admins; audited). GET /api/v1/vsas exports the deploy VSAs of an image; GET
 * /api/v1/deployer names the key they are signed with (for the trust stores' `deployers` role).
 */
import { Router, type Request, type Response } from 'express';
import { CtError } from '../../src/core/errors.js';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { actor, recordAudit } from '../audit.js';
import { sendError } from '../http-error.js';
import { validateBody } from '../openapi.js';
import type { DeployerKey } from '../promotion/deployer-key.js';
import { openPromotion, type OpenPrDeps } from '../promotion/open-pr.js';
import { beforeOf, limitMessage, nextOf, pageLimit } from './page.js';
import { NAME } from '../../src/core/name.js';

const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** Codes that mean the request cannot succeed as asked (4xx), rather than a forge/registry failure (502). */
const CLIENT = new Set(['PROMOTE_APP_MISSING', 'PROMOTE_YAML_INVALID', 'PROMOTE_YAML_ALIAS', 'USAGE']);

export function promotionRoutes(ctx: ServerContext, deps: OpenPrDeps & { key: DeployerKey }): Router {
  const r = Router();
  const read = requirePermission(ctx.db, ctx.oidc, 'read');

  r.post('/api/v1/promotions', requirePermission(ctx.db, ctx.oidc, 'deploy'), validateBody('createPromotion'), async (req: Request, res: Response) => {
    const { app, from, to } = req.body as { app: string; from: string; to: string };
    if (from === to) return sendError(res, 400, 'BAD_REQUEST', 'from and to are the same environment');
    const [d] = await ctx.db.query<{ id: string; environment: string; app: string; reference: string; image_digest: string | null; bundle_digest: string | null }>(
      `SELECT id, environment, app, reference, image_digest, bundle_digest FROM deployments WHERE environment = ? AND app = ? AND status = 'succeeded' ORDER BY created_at DESC LIMIT 1`, [from, app],
    );
    if (!d) return sendError(res, 404, 'NOT_FOUND', `no successful deployment of ${app} in ${from} to promote`);
    try {
      const out = await openPromotion(ctx, deps, d, to);
      await recordAudit(ctx.db, 'promotion.opened', d.id, { principal: actor(req.principal), deployment: d.id, from, to, app, reference: d.reference, outcome: out.outcome, url: out.change?.url ?? null, allowed: out.allow, trigger: 'api' });
      res.json({ outcome: out.outcome, deployment: d.id, bundle: d.reference, from, to, app, file: out.file, branch: out.branch, url: out.change?.url ?? null, number: out.change?.number ?? null, allowed: out.allow });
    } catch (e) {
      const code = e instanceof CtError ? e.code : 'PROMOTE_FORGE_ERROR';
      await recordAudit(ctx.db, 'promotion.failed', d.id, { principal: actor(req.principal), deployment: d.id, from, to, app, code });
      sendError(res, CLIENT.has(code) ? 422 : code === 'NO_POLICY' ? 503 : 502, code, (e as Error).message.slice(0, 500));
    }
  });

  r.get('/api/v1/vsas', read, async (req: Request, res: Response) => {
    const image = typeof req.query.imageDigest === 'string' ? req.query.imageDigest : '';
    if (!DIGEST.test(image)) return sendError(res, 400, 'BAD_REQUEST', 'imageDigest=sha256:<64 hex> is required');
    // Newest first, narrowed to one bundle and/or environment (what a verifier of one deployment
    // wants), a page at a time: an image redeployed often has more than one answer holds.
    const w = ['image_digest = ?'];
    const p: unknown[] = [image];
    const where = (clause: string, ...values: unknown[]) => void (w.push(clause), p.push(...values));
    if (req.query.bundleDigest !== undefined) {
      if (typeof req.query.bundleDigest !== 'string' || !DIGEST.test(req.query.bundleDigest)) return sendError(res, 400, 'BAD_REQUEST', 'bundleDigest must be sha256:<64 hex>');
      where('bundle_digest = ?', req.query.bundleDigest);
    }
    if (req.query.environment !== undefined) {
      if (typeof req.query.environment !== 'string' || !NAME.test(req.query.environment)) return sendError(res, 400, 'BAD_REQUEST', 'environment must be an environment name');
      where('environment = ?', req.query.environment);
    }
    // Refused when malformed, not read as absent: a client holding a damaged cursor would get the
    // first page again, and page for good.
    const cursor = beforeOf(req.query.before);
    if (req.query.before !== undefined && !cursor) return sendError(res, 400, 'BAD_REQUEST', 'before must be the next of a previous page');
    if (cursor) where('(created_at, id) < (?, ?)', ...cursor);
    // Each envelope is a few KiB: a page is bounded by count.
    const limit = pageLimit(req.query.limit, 64, 64);
    if (limit === 'bad') return sendError(res, 400, 'BAD_REQUEST', limitMessage(64));
    const rows = await ctx.db.query<{ id: string; deployment_id: string; environment: string; app: string; bundle_digest: string | null; envelope: string; published: string | null; created_at: number }>(
      `SELECT id, deployment_id, environment, app, bundle_digest, envelope, published, created_at FROM vsas WHERE ${w.join(' AND ')} ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`, p,
    );
    res.json({
      vsas: rows.slice(0, limit).map((v) => ({ deployment: v.deployment_id, environment: v.environment, app: v.app, imageDigest: image, bundleDigest: v.bundle_digest, published: v.published, createdAt: new Date(Number(v.created_at)).toISOString(), envelope: v.envelope })),
      next: nextOf(rows, limit),
    });
  });

  r.get('/api/v1/deployer', read, (_req: Request, res: Response) => {
    res.json({ keyId: deps.key.keyId, publicKey: deps.key.publicKey, algorithm: deps.key.algorithm, role: 'deployers' });
  });
  return r;
}
