import { Router, type NextFunction, type Request, type Response } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { sendError } from '../http-error.js';
import type { DeploySteps } from '../deploy/pipeline.js';
import { validateBody } from '../openapi.js';
import { BODY_ERROR, RAW_BODY, type HotRequest } from '../verify/hot-path.js';
import { VerdictCache } from '../verify/verdict-cache.js';

/** A reference naming immutable content: its answer may be stored (server/verify/verdict-cache.ts). */
const PINNED = /@sha256:[0-9a-f]{64}$/;

/**
 * `/api/v1/verify`: a registry reference (fetched and verified like a deploy) or, in Svalinn's
 * shape `{digest}`, a bundle this server already holds → the decision. Nothing is deployed.
 * Answers for a pinned reference are stored pre-serialised in `verdicts` when the request came
 * through the hot path (server/verify/hot-path.ts), which answers the same bytes from then on.
 */
export function verifyRoutes(ctx: ServerContext, steps: DeploySteps, verdicts?: VerdictCache): Router {
  const r = Router();
  const computed = ctx.metrics.verifyAnswers.labels('computed');
  // A body the hot path read and found not to be JSON: answered here as express.json's error.
  const bodyError = (req: Request, _res: Response, next: NextFunction) => next((req as unknown as HotRequest)[BODY_ERROR]);
  r.post('/api/v1/verify', bodyError, requirePermission(ctx.db, ctx.oidc, 'verify'), validateBody('verify'), async (req: Request, res: Response) => {
    // What the answer depends on, taken before computing it: a change meanwhile is not missed.
    const stamp = verdicts?.stamp();
    computed.inc();
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
    const answer = {
      decision: verdict.allow ? 'ALLOW' : 'REJECT',
      allow: verdict.allow,
      code: verdict.allow ? null : verdict.code,
      message: verdict.allow ? undefined : verdict.message,
      warnings: verdict.allow ? verdict.warnings : [],
      imageDigest: bundle.imageDigest,
      bundleDigest: bundle.bundleDigest,
    };
    const key = (req as unknown as HotRequest)[RAW_BODY];
    if (!verdicts || !stamp || key === undefined || typeof body.reference !== 'string' || !PINNED.test(body.reference) || !VerdictCache.cacheable(stamp)) return void res.json(answer);
    // The bytes res.json would send (JSON.stringify, UTF-8), with the headers sent with them.
    const bytes = Buffer.from(JSON.stringify(answer), 'utf8');
    res.set('content-type', 'application/json; charset=utf-8');
    verdicts.set(key, stamp, { ...res.getHeaders(), 'content-length': bytes.length }, bytes);
    res.send(bytes);
  });
  return r;
}
