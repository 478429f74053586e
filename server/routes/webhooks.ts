import { jsonDepthExceeds } from '../../src/core/json.js';
import express, { Router, type Request, type Response } from 'express';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ServerContext } from '../context.js';
import { sendError } from '../http-error.js';

/** A trigger handed to the GitOps/deploy side. A webhook only ever *triggers* a reconcile. */
export interface WebhookTrigger {
  source: 'github' | 'gitlab' | 'api';
  event: string;
  deliveryId: string;
  repository: string;
  ref?: string;
  sha?: string;
}

export const GITHUB_EVENTS = new Set(['push', 'workflow_run', 'registry_package', 'package', 'deployment']);
const GITLAB_EVENTS: Record<string, string> = { 'Push Hook': 'push', 'Pipeline Hook': 'pipeline', 'Deployment Hook': 'deployment', 'Tag Push Hook': 'push' };

function equalConstantTime(a: string, b: string): boolean {
  // Hash both sides so that neither the length nor the content leaks through timing.
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/**
 * GitHub's HMAC-SHA256 over the bytes as they arrived. (@octokit/webhooks-methods' verify takes
 * the payload as a string: a body that is not UTF-8 was decoded with U+FFFD before hashing, so a
 * correctly signed delivery was refused as forged, and two byte strings decoding alike verified
 * under one signature.)
 */
function githubSignatureMatches(secret: string, body: Buffer, signature: string): boolean {
  const expected = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(expected, Buffer.from(signature.slice('sha256='.length), 'hex'));
}

function parseJson(buf: Buffer): Record<string, unknown> | null {
  if (jsonDepthExceeds(buf)) return null; // answered like any other body that is not a JSON object
  try {
    const v = JSON.parse(buf.toString('utf8'));
    return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
  } catch {
    return null;
  }
}

/**
 * The JSON payload of a GitHub delivery, read only after its signature was checked on the raw
 * bytes: GitHub sends either JSON (`application/json`) or, its default content type for a new
 * webhook, `application/x-www-form-urlencoded` with the JSON in the `payload` field.
 */
function githubPayload(contentType: string | undefined, body: Buffer): Record<string, unknown> | null {
  if (/^application\/x-www-form-urlencoded\s*(;|$)/i.test(contentType ?? '')) {
    const payload = new URLSearchParams(body.toString('utf8')).get('payload');
    return payload === null ? null : parseJson(Buffer.from(payload, 'utf8'));
  }
  return parseJson(body);
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length < 1024 ? v : undefined);

async function accept(ctx: ServerContext, res: Response, trigger: WebhookTrigger): Promise<void> {
  // A replayed delivery id changes nothing: the first insert wins.
  const fresh = await ctx.db.run('INSERT INTO deliveries (source, id, event, received_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING', [
    trigger.source, trigger.deliveryId, trigger.event, Date.now(),
  ]);
  if (fresh.changes === 0) {
    ctx.metrics.webhooks.inc({ source: trigger.source, outcome: 'replayed' });
    res.status(200).json({ status: 'duplicate', deliveryId: trigger.deliveryId });
    return;
  }
  ctx.metrics.webhooks.inc({ source: trigger.source, outcome: 'accepted' });
  try {
    await ctx.onTrigger(trigger);
  } catch (e) {
    // Not triggered: forget the delivery, so that the forge's redelivery is not taken for a replay.
    await ctx.db.run('DELETE FROM deliveries WHERE source = ? AND id = ?', [trigger.source, trigger.deliveryId]).catch(() => undefined);
    throw e;
  }
  res.status(202).json({ status: 'accepted', deliveryId: trigger.deliveryId });
}

export function webhookRoutes(ctx: ServerContext): Router {
  const r = Router();
  const raw = express.raw({ type: () => true, limit: ctx.config.maxBodyBytes });

  r.post('/webhooks/github', raw, async (req: Request, res: Response) => {
    const secrets = ctx.config.github?.webhookSecrets ?? [];
    const signature = req.header('x-hub-signature-256');
    const body = Buffer.isBuffer(req.body) ? (req.body as Buffer) : Buffer.alloc(0);
    if (!secrets.length) return sendError(res, 401, 'UNAUTHENTICATED', 'no GitHub webhook secret configured (github.webhookSecrets, or GITHUB_WEBHOOK_SECRETS)');
    if (!signature || !/^sha256=[0-9a-f]{64}$/.test(signature)) return sendError(res, 401, 'BAD_SIGNATURE', 'missing or malformed X-Hub-Signature-256');
    let valid = false;
    // Secret rotation: any configured secret may have signed it.
    for (const s of secrets) if (githubSignatureMatches(s, body, signature)) valid = true;
    if (!valid) {
      ctx.metrics.webhooks.inc({ source: 'github', outcome: 'forged' });
      return sendError(res, 401, 'BAD_SIGNATURE', 'X-Hub-Signature-256 does not match any configured secret');
    }
    const event = req.header('x-github-event') ?? '';
    const delivery = req.header('x-github-delivery') ?? '';
    if (!/^[\w-]{1,100}$/.test(delivery)) return sendError(res, 400, 'BAD_REQUEST', 'missing or malformed X-GitHub-Delivery');
    const payload = githubPayload(req.header('content-type'), body);
    if (!payload) return sendError(res, 400, 'JSON_INVALID', 'payload is not a JSON object (JSON body, or the `payload` field of a form-encoded one)');
    if (!GITHUB_EVENTS.has(event)) {
      ctx.metrics.webhooks.inc({ source: 'github', outcome: 'ignored' });
      return void res.status(202).json({ status: 'ignored', event });
    }
    const repo = str((payload.repository as Record<string, unknown> | undefined)?.full_name);
    if (!repo) return sendError(res, 400, 'BAD_REQUEST', 'payload.repository.full_name missing');
    const sha = str(payload.after) ?? str((payload.workflow_run as Record<string, unknown> | undefined)?.head_sha) ?? str((payload.deployment as Record<string, unknown> | undefined)?.sha);
    await accept(ctx, res, { source: 'github', event, deliveryId: delivery, repository: repo, ref: str(payload.ref), sha });
  });

  r.post('/webhooks/gitlab', raw, async (req: Request, res: Response) => {
    const tokens = ctx.config.gitlab?.webhookTokens ?? [];
    const token = req.header('x-gitlab-token') ?? '';
    if (!tokens.length) return sendError(res, 401, 'UNAUTHENTICATED', 'no GitLab webhook token configured (gitlab.webhookTokens, or GITLAB_WEBHOOK_TOKENS)');
    if (!token || !tokens.some((t) => equalConstantTime(t, token))) {
      ctx.metrics.webhooks.inc({ source: 'gitlab', outcome: 'forged' });
      return sendError(res, 401, 'BAD_TOKEN', 'X-Gitlab-Token does not match');
    }
    const kind = req.header('x-gitlab-event') ?? '';
    const delivery = req.header('x-gitlab-event-uuid') ?? req.header('idempotency-key') ?? '';
    if (!/^[\w-]{1,100}$/.test(delivery)) return sendError(res, 400, 'BAD_REQUEST', 'missing or malformed X-Gitlab-Event-UUID');
    const payload = parseJson(Buffer.isBuffer(req.body) ? (req.body as Buffer) : Buffer.alloc(0));
    if (!payload) return sendError(res, 400, 'JSON_INVALID', 'payload is not a JSON object');
    // Own entries only: an X-Gitlab-Event of `constructor` or `hasOwnProperty` found a function here (500).
    const event = Object.hasOwn(GITLAB_EVENTS, kind) ? GITLAB_EVENTS[kind] : undefined;
    if (!event) return void res.status(202).json({ status: 'ignored', event: kind });
    const project = payload.project as Record<string, unknown> | undefined;
    const repo = str(project?.path_with_namespace);
    if (!repo) return sendError(res, 400, 'BAD_REQUEST', 'payload.project.path_with_namespace missing');
    const attrs = payload.object_attributes as Record<string, unknown> | undefined;
    await accept(ctx, res, { source: 'gitlab', event, deliveryId: delivery, repository: repo, ref: str(payload.ref) ?? str(attrs?.ref), sha: str(payload.checkout_sha) ?? str(payload.after) ?? str(attrs?.sha) });
  });
  return r;
}
