import { Router, type Request, type Response } from 'express';
import { parsePublishedPorts, type PublishedPort } from '../../src/protocol/ports.js';
import { randomUUID } from 'node:crypto';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { sendError } from '../http-error.js';
import type { DeployPipeline } from '../deploy/pipeline.js';
import { validateBody } from '../openapi.js';
import { liveDeployments } from '../deploy/live.js';
import { actor, recordAudit } from '../audit.js';
import { cursorOf, limitMessage, nextOf, pageLimit } from './page.js';
import { NAME } from '../../src/core/name.js';

type Row = Record<string, string | number | null>;

function view(r: Row) {
  return {
    id: r.id, environment: r.environment, app: r.app, commit: r.commit_sha, commitAuthor: r.commit_author ?? null, commitMessage: r.commit_message ?? null,
    reference: r.reference, imageDigest: r.image_digest, bundleDigest: r.bundle_digest ?? null, signers: r.signers ? (JSON.parse(String(r.signers)) as string[]) : [],
    status: r.status, reason: r.reason, message: r.message, rollbackOf: r.rollback_of, suspended: Number(r.suspended ?? 0) === 1,
    // Who asked for it through the API ({kind, id, role}); null for GitOps deploys and older rows.
    createdBy: r.created_by ? (JSON.parse(String(r.created_by)) as unknown) : null,
    hosts: JSON.parse(String(r.hosts ?? '{}')), createdAt: new Date(Number(r.created_at)).toISOString(), updatedAt: new Date(Number(r.updated_at)).toISOString(),
  };
}

/** The list's columns: never the evidence or the decision input (kilobytes per row, read only for one deployment). */
const LIST_COLUMNS = 'id, environment, app, commit_sha, commit_author, commit_message, reference, image_digest, bundle_digest, signers, status, reason, message, rollback_of, hosts, created_at, updated_at, suspended, created_by';
/** Deployments one page holds at most (and when `limit` is not given). */
const MAX_PAGE = 500;
const REF = /^[a-z0-9.-]+(?::\d{1,5})?\/[a-z0-9._/-]+(?::[\w.-]{1,128})?@sha256:[0-9a-f]{64}$/;

export function deploymentRoutes(ctx: ServerContext, pipeline: DeployPipeline): Router {
  const r = Router();
  const read = requirePermission(ctx.db, ctx.oidc, 'read');
  const deploy = requirePermission(ctx.db, ctx.oidc, 'deploy');

  r.get('/api/v1/deployments', read, async (req: Request, res: Response) => {
    const env = typeof req.query.environment === 'string' ? req.query.environment : undefined;
    // The live deployments with their verified evidence: the input of `ct policy diff --against`.
    if (req.query.format === 'evidence') return void res.json({ deployments: await liveDeployments(ctx.db, env) });
    // Newest first, filtered, a page at a time with a (created_at, id) cursor.
    const w: string[] = [];
    const p: unknown[] = [];
    const where = (clause: string, ...values: unknown[]) => void (w.push(clause), p.push(...values));
    if (env) where('environment = ?', env);
    if (typeof req.query.app === 'string') where('app = ?', req.query.app.slice(0, 63));
    if (typeof req.query.status === 'string') where('status = ?', req.query.status.slice(0, 20));
    if (typeof req.query.imageDigest === 'string') {
      if (!/^sha256:[0-9a-f]{64}$/.test(req.query.imageDigest)) return sendError(res, 400, 'BAD_REQUEST', 'imageDigest must be sha256:<64 hex>');
      where('image_digest = ?', req.query.imageDigest);
    }
    // Refused when malformed, not read as absent: a damaged cursor answered with the first page
    // again loops a client paging on; `limit=0` answered 500 rows.
    const cursor = cursorOf(req.query.before);
    if (cursor === 'bad') return sendError(res, 400, 'BAD_REQUEST', 'before must be <created_at>:<id>, the next of a previous page');
    // A limit past the page's size is read as the size (asking for more is no fault); one that is
    // no whole number, or 0, is refused.
    const limit = pageLimit(req.query.limit, MAX_PAGE, MAX_PAGE);
    if (limit === 'bad') return sendError(res, 400, 'BAD_REQUEST', limitMessage(MAX_PAGE));
    // A row-value comparison: both databases seek the (…, created_at, id) indexes with it.
    if (cursor) where('(created_at, id) < (?, ?)', ...cursor);
    const rows = await ctx.db.query<Row>(`SELECT ${LIST_COLUMNS} FROM deployments ${w.length ? `WHERE ${w.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ${limit + 1}`, p);
    res.json({ deployments: rows.slice(0, limit).map(view), next: nextOf(rows, limit) });
  });

  r.get('/api/v1/deployments/:id', read, async (req: Request, res: Response) => {
    const [row] = await ctx.db.query<Row>('SELECT * FROM deployments WHERE id = ?', [String(req.params.id)]);
    if (!row) return sendError(res, 404, 'NOT_FOUND', 'no such deployment');
    // One deployment comes with its verified evidence (signers, log entries, provenance, profiles).
    res.json({ ...view(row), bundleDigest: row.bundle_digest ?? null, evidence: row.evidence ? JSON.parse(String(row.evidence)) : null });
  });

  // An explicit, authorised deploy (CI with an OIDC token, or an operator).
  r.post('/api/v1/deployments', deploy, validateBody('createDeployment'), async (req: Request, res: Response) => {
    const { environment, app, bundle, hosts, commit, bundleDigest, ports } = (req.body ?? {}) as Record<string, unknown>;
    if (typeof environment !== 'string' || !NAME.test(environment)) return sendError(res, 400, 'BAD_REQUEST', 'environment is required ([a-z0-9._-])');
    if (typeof app !== 'string' || !NAME.test(app)) return sendError(res, 400, 'BAD_REQUEST', 'app is required ([a-z0-9._-])');
    if (typeof bundle !== 'string' || !REF.test(bundle)) return sendError(res, 400, 'BAD_REQUEST', 'bundle must be a registry reference pinned by digest');
    const selector = (hosts ?? {}) as Record<string, string>;
    if (typeof selector !== 'object' || Array.isArray(selector) || Object.values(selector).some((v) => typeof v !== 'string')) return sendError(res, 400, 'BAD_REQUEST', 'hosts must map labels to strings');
    // API deploys never share GitOps' (commit, environment, app) key: a caller cannot pre-empt a
    // commit's deploy. With the CI job's commit they are idempotent per (commit, bundle) and report
    // to that commit; without, each request is a new deploy.
    const sha = typeof commit === 'string' && /^[0-9a-f]{40}$/.test(commit) ? `api:${commit}:${bundle.split('@')[1]}` : `api:${randomUUID()}`;
    const published = parsePublishedPorts(ports);
    if ('problem' in published) return sendError(res, 400, 'BAD_REQUEST', `ports: ${published.problem}`);
    const who = actor(req.principal);
    const out = await pipeline.create(sha, environment, app, bundle, selector, undefined, typeof bundleDigest === 'string' ? bundleDigest : undefined, published.ports, undefined, undefined, who);
    // Every request is on record with who made it, an idempotent repeat (created: false) too.
    await recordAudit(ctx.db, 'api.deploy', out.id, { principal: who, deployment: out.id, created: out.created, environment, app, reference: bundle, commit: sha });
    res.status(out.created ? 202 : 200).json({ id: out.id, created: out.created });
  });

  r.post('/api/v1/deployments/:id/rollback', deploy, async (req: Request, res: Response) => {
    const [cur] = await ctx.db.query<Row>('SELECT * FROM deployments WHERE id = ?', [String(req.params.id)]);
    if (!cur) return sendError(res, 404, 'NOT_FOUND', 'no such deployment');
    const [prev] = await ctx.db.query<Row>(
      `SELECT * FROM deployments WHERE environment = ? AND app = ? AND status = 'succeeded' AND created_at < ? AND reference <> ? ORDER BY created_at DESC LIMIT 1`,
      [cur.environment, cur.app, cur.created_at, cur.reference],
    );
    if (!prev) return sendError(res, 409, 'NO_PREVIOUS', 'no earlier successful deployment to roll back to');
    const out = await pipeline.create(`rollback:${cur.id}`, String(cur.environment), String(cur.app), String(prev.reference), JSON.parse(String(prev.hosts)), String(cur.id), prev.bundle_digest ? String(prev.bundle_digest) : undefined, prev.ports ? (JSON.parse(String(prev.ports)) as PublishedPort[]) : undefined, undefined, Number(prev.suspended ?? 0) === 1, actor(req.principal));
    await recordAudit(ctx.db, 'api.rollback', String(cur.id), { principal: actor(req.principal), deployment: cur.id, to: prev.id, reference: prev.reference, created: out.id });
    res.status(202).json({ id: out.id, rollbackOf: cur.id, reference: prev.reference });
  });
  return r;
}
