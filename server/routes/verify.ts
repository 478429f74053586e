import { Router, type Request, type Response } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { sendError } from '../http-error.js';
import type { DeploySteps } from '../deploy/pipeline.js';
import { validateBody } from '../openapi.js';

/**
 * `/api/v1/verify`: a registry reference (fetched and verified like a deploy) or, in Svalinn's
 * shape `{digest}`, a bundle this server already holds → the decision. Nothing is deployed.
 */
export function verifyRoutes(ctx: ServerContext, steps: DeploySteps): Router {
  const r = Router();
  r.post('/api/v1/verify', requirePermission(ctx.db, ctx.oidc, 'verify'), validateBody('verify'), async (req: Request, res: Response) => {
    const body = (req.body ?? {}) as { reference?: unknown; digest?: unknown; environment?: unknown; policy?: unknown };
    const environment = typeof body.environment === 'string' ? body.environment : 'default';
    let reference: string | undefined;
    if (typeof body.reference === 'string') reference = body.reference;
    else if (typeof body.digest === 'string' && /^sha256:[0-9a-f]{64}$/.test(body.digest)) {
      // Svalinn's shape: the image digest of something this server has fetched before.
      const [row] = await ctx.db.query<{ reference: string }>('SELECT reference FROM deployments WHERE image_digest = ? ORDER BY created_at DESC LIMIT 1', [body.digest]);
      if (!row) return sendError(res, 404, 'NOT_FOUND', `no bundle for image ${body.digest} is known to this server; send {reference}`);
      reference = row.reference;
    } else return sendError(res, 400, 'BAD_REQUEST', 'send {reference: "registry/repo@sha256:…"} or {digest: "sha256:…"}');
    const bundle = await steps.fetchAndVerify(reference, environment);
    if (!bundle.ok) return void res.status(200).json({ decision: 'REJECT', allow: false, code: bundle.code, message: bundle.message });
    // No target host: runtime rules that depend on host facts are judged as unknown (fail closed).
    const verdict = await steps.decide(bundle, { id: 'api', facts: undefined, labels: {} }, environment, typeof body.policy === 'string' ? body.policy : undefined);
    res.json({
      decision: verdict.allow ? 'ALLOW' : 'REJECT',
      allow: verdict.allow,
      code: verdict.allow ? null : verdict.code,
      message: verdict.allow ? undefined : verdict.message,
      warnings: verdict.allow ? verdict.warnings : [],
      imageDigest: bundle.imageDigest,
      bundleDigest: bundle.bundleDigest,
    });
  });
  return r;
}
