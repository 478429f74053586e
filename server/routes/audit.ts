import { Router, type Request, type Response } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';
import { sendError } from '../http-error.js';
import { cursorAt, cursorOf, limitMessage, pageLimit } from './page.js';

type Row = { id: string; time: number | string; kind: string; subject: string | null; record: string };

const KIND = /^[a-z][a-z0-9._-]{0,63}$/;
const MAX_LIMIT = 1000;
/** The rows one text search reads at most (newest first): `q` is matched in JS, so a request's work is bounded by this, not by the log's size. */
export const SCAN_ROWS = MAX_LIMIT * 10;

export interface AuditQuery {
  kind?: string;
  subject?: string;
  since?: number;
  until?: number;
  /** Rows strictly older than this (time, id): the `next` of the previous page. */
  before?: [number, string];
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

/**
 * One page of the audit log. `next`: the cursor to ask for the rest with (`before=`), null when
 * nothing older matches. `truncated`: a text search read its SCAN_ROWS rows before it found `limit`
 * matches; what it returned is all it found in them, and `next` goes on from the last row it read
 * (older matches may follow: the page says so rather than ending the list there).
 */
export interface AuditPage {
  entries: ReturnType<typeof auditEntry>[];
  next: string | null;
  truncated: boolean;
}

/** Newest first, keyed on (time, id); every filter is a bound parameter (no text reaches the SQL). */
export async function auditPage(ctx: Pick<ServerContext, 'db'>, q: AuditQuery): Promise<AuditPage> {
  const where: string[] = [];
  const params: unknown[] = [];
  const filters: Array<[string, unknown]> = [['kind = ?', q.kind], ['subject = ?', q.subject], ['time >= ?', q.since], ['time < ?', q.until]];
  for (const [clause, value] of filters) {
    if (value === undefined || value === '') continue;
    where.push(clause);
    params.push(value);
  }
  // Rows sharing a millisecond are told apart by id: paging by time alone skipped or repeated them.
  // `time <= ?` lets both databases seek the time indexes; the row value settles the ties.
  if (q.before) {
    where.push('time <= ? AND (time, id) < (?, ?)');
    params.push(q.before[0], ...q.before);
  }
  const window = q.text ? SCAN_ROWS : q.limit + 1;
  const rows = await ctx.db.query<Row>(
    `SELECT id, time, kind, subject, record FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY time DESC, id DESC LIMIT ?`,
    [...params, window],
  );
  const hits = q.text ? rows.filter((r) => r.record.includes(q.text as string)) : rows;
  const entries = hits.slice(0, q.limit);
  if (hits.length > q.limit) {
    const last = entries[entries.length - 1];
    return { entries: entries.map(auditEntry), next: cursorAt(last.time, last.id), truncated: false };
  }
  // A search that read its whole window: older rows were not looked at.
  if (q.text && rows.length === window) {
    const last = rows[rows.length - 1];
    return { entries: entries.map(auditEntry), next: cursorAt(last.time, last.id), truncated: true };
  }
  return { entries: entries.map(auditEntry), next: null, truncated: false };
}

/** The entries of one page (callers that want only the newest few). */
export async function searchAudit(ctx: Pick<ServerContext, 'db'>, q: AuditQuery) {
  return (await auditPage(ctx, q)).entries;
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
  const before = cursorOf(query.before);
  if (before === 'bad') return 'before must be <time>:<id>, the next of a previous page';
  const q: AuditQuery = { kind: str('kind'), subject: str('subject'), since: time('since'), until: time('until'), before: before ?? undefined, text: str('q'), limit: 0 };
  if (q.kind !== undefined && !KIND.test(q.kind)) return 'kind must match [a-z][a-z0-9._-]{0,63}';
  if (q.subject !== undefined && q.subject.length > 200) return 'subject is at most 200 characters';
  if (q.text !== undefined && q.text.length > 200) return 'q is at most 200 characters';
  if (Number.isNaN(q.since) || Number.isNaN(q.until)) return 'since and until are RFC 3339 times or milliseconds';
  const limit = pageLimit(query.limit, 100, MAX_LIMIT);
  if (limit === 'bad') return limitMessage(MAX_LIMIT);
  q.limit = limit;
  return q;
}

/**
 * `GET /api/v1/audit`: every recorded decision, action and alert (auditors and admins), newest
 * first, a page at a time; `format=jsonl` exports the same rows as JSON lines, the page's `next`
 * and `truncated` in the `CT-Next` and `CT-Truncated` headers (a line of their own would read as a record).
 */
export function auditRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.get('/api/v1/audit', requirePermission(ctx.db, ctx.oidc, 'audit'), async (req: Request, res: Response) => {
    const q = auditQueryFrom(req.query as Record<string, unknown>);
    if (typeof q === 'string') return sendError(res, 400, 'BAD_REQUEST', q);
    const { entries, next, truncated } = await auditPage(ctx, q);
    if (req.query.format === 'jsonl') {
      res.type('application/x-ndjson');
      if (next) res.setHeader('CT-Next', next);
      if (truncated) res.setHeader('CT-Truncated', 'true');
      return void res.send(entries.map((e) => JSON.stringify(e)).join('\n') + (entries.length ? '\n' : ''));
    }
    res.json({ entries, next, truncated });
  });
  return r;
}
