import { Router } from 'express';
import type { ServerContext } from '../context.js';
import { authenticateRequest, requirePermission } from '../auth/middleware.js';
import { can } from '../auth/principal.js';

/** Bytes of events a subscriber may leave unread before its stream is closed. */
const MAX_UNREAD = 8 * 1024 * 1024;
const PING_MS = 15_000;

/** Bounds of one `/api/v1/events` stream (config `events`). */
export interface EventStreamLimits {
  /**
   * How often the stream's credentials are checked again (default 5000 ms): a signed-out or
   * expired session, a revoked API key or an expired token ends the stream at the next check (an
   * API key's check may be answered by the token cache, itself at most 5 s old).
   */
  recheckMs?: number;
  /** The stream ends after this long (default 3600 s, at most 86,400); EventSource reconnects on its own. */
  maxSeconds?: number;
}

/**
 * `/api/v1/events`: server-sent events of deploys, decisions and host state. The credentials are
 * those of the request that opened the stream, so they are judged again every `recheckMs`, as a
 * new request would be: the stream ends (`event: end`, reason `UNAUTHENTICATED`) once they no
 * longer pass, and in any case after `maxSeconds` (reason `MAX_DURATION`).
 */
export function eventRoutes(ctx: ServerContext): Router {
  const r = Router();
  const recheckMs = ctx.config.events?.recheckMs ?? 5_000;
  const maxMs = (ctx.config.events?.maxSeconds ?? 3600) * 1000;
  r.get('/api/v1/events', requirePermission(ctx.db, ctx.oidc, 'read'), (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': connected\n\n');
    // The events of one turn (a fleet's statuses) leave in one write, not one socket write each.
    let pending = '';
    const flush = () => {
      const text = pending;
      pending = '';
      if (res.writableEnded) return;
      // A subscriber that stops reading is dropped rather than buffered for without end.
      if (res.writableLength > MAX_UNREAD) return void res.destroy();
      res.write(text);
    };
    const send = (e: { type: string; data: unknown }) => {
      if (!pending) setImmediate(flush);
      pending += `event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
    };
    const end = (reason: 'UNAUTHENTICATED' | 'MAX_DURATION') => {
      if (res.writableEnded || res.destroyed) return;
      // Nothing queued for this turn leaves after the end: it was published to a principal no longer let in.
      pending = '';
      res.end(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
    };
    ctx.events.on('event', send);
    const ping = setInterval(() => void (res.writableEnded || res.write(': ping\n\n')), PING_MS);
    let checking = false;
    const recheck = setInterval(() => {
      if (checking) return;
      checking = true;
      authenticateRequest(ctx.db, ctx.oidc, req)
        .then((auth) => void (auth.ok && can(auth.principal, 'read') ? undefined : end('UNAUTHENTICATED')))
        // A check that could not be made (database unreachable) does not count as a pass.
        .catch(() => end('UNAUTHENTICATED'))
        .finally(() => (checking = false));
    }, recheckMs);
    const lifetime = setTimeout(() => end('MAX_DURATION'), maxMs);
    // The response's close: it comes when the client goes away and when the stream is ended here.
    res.on('close', () => {
      clearInterval(ping);
      clearInterval(recheck);
      clearTimeout(lifetime);
      ctx.events.off('event', send);
    });
  });
  return r;
}
