import { Router, type Request, type Response } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { sendError } from '../http-error.js';

type Row = { id: string; time: number | string; kind: string; subject: string | null; record: string };

const KIND = /^[a-z][a-z0-9._-]{0,63}$/;
const MAX_LIMIT = 1000;

export interface AuditQuery {
  kind?: string;
  subject?: string;
  since?: number;
  until?: number;
  /** Only records whose JSON text contains this (bounded, matched as a plain substring). */
  text?: string;
  limit: number;
}

export function auditEntry(r: Row) {
  let record: unknown;
  try {
    record = JSON.parse(r.record);
  } catch {
    record = null;
  }
  return { id: r.id, time: new Date(Number(r.time)).toISOString(), kind: r.kind, subject: r.subject, record };
}

/** Newest first; every filter is a bound parameter (no text reaches the SQL). */
export async function searchAudit(ctx: Pick<ServerContext, 'db'>, q: AuditQuery) {
  const where: string[] = [];
  const params: unknown[] = [];
  const filters: Array<[string, unknown]> = [['kind = ?', q.kind], ['subject = ?', q.subject], ['time >= ?', q.since], ['time < ?', q.until]];
  for (const [clause, value] of filters) {
    if (value === undefined || value === '') continue;
    where.push(clause);
    params.push(value);
  }
  const rows = await ctx.db.query<Row>(
    `SELECT id, time, kind, subject, record FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY time DESC, id DESC LIMIT ?`,
    [...params, q.text ? MAX_LIMIT * 10 : q.limit],
  );
  const hits = q.text ? rows.filter((r) => r.record.includes(q.text as string)) : rows;
  return hits.slice(0, q.limit).map(auditEntry);
}

/** Parses the query string of an audit search; a message for the first bad field. */
export function auditQueryFrom(query: Record<string, unknown>): AuditQuery | string {
  const str = (k: string) => (typeof query[k] === 'string' ? (query[k] as string) : undefined);
  const time = (k: string) => {
    const v = str(k);
    if (v === undefined) return undefined;
    const t = /^\d{1,15}$/.test(v) ? Number(v) : Date.parse(v);
    return Number.isFinite(t) ? t : NaN;
  };
  const q: AuditQuery = { kind: str('kind'), subject: str('subject'), since: time('since'), until: time('until'), text: str('q'), limit: Number(str('limit') ?? 100) };
  if (q.kind !== undefined && !KIND.test(q.kind)) return 'kind must match [a-z][a-z0-9._-]{0,63}';
  if (q.subject !== undefined && q.subject.length > 200) return 'subject is at most 200 characters';
  if (q.text !== undefined && q.text.length > 200) return 'q is at most 200 characters';
  if (Number.isNaN(q.since) || Number.isNaN(q.until)) return 'since and until are RFC 3339 times or milliseconds';
  if (!Number.isInteger(q.limit) || q.limit < 1 || q.limit > MAX_LIMIT) return `limit must be 1–${MAX_LIMIT}`;
  return q;
}

/**
 * `GET /api/v1/audit`: every recorded decision, action and alert (auditors and admins), newest
 * first; `format=jsonl` exports the same rows as JSON lines.
 */
export function auditRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.get('/api/v1/audit', requirePermission(ctx.db, ctx.oidc, 'audit'), async (req: Request, res: Response) => {
    const q = auditQueryFrom(req.query as Record<string, unknown>);
    if (typeof q === 'string') return sendError(res, 400, 'BAD_REQUEST', q);
    const entries = await searchAudit(ctx, q);
    if (req.query.format === 'jsonl') {
      res.type('application/x-ndjson');
      return void res.send(entries.map((e) => JSON.stringify(e)).join('\n') + (entries.length ? '\n' : ''));
    }
    res.json({ entries });
  });
  return r;
}
