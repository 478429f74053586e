import { Router } from 'express';
import type { ServerContext } from '../context.js';
import { authenticateRequest, requirePermission } from '../auth/middleware.js';
import { can } from '../auth/principal.js';
import { sendError } from '../http-error.js';

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
  /** Streams one principal may hold open at once (default 8): each holds a socket, two timers and a listener. */
  perPrincipal?: number;
  /**
   * Streams open at once in all, on this server process (default 256); the last tenth (rounded down)
   * only admins and auditors may open, so viewers and operators fill at most the rest.
   */
  maxStreams?: number;
}

/** Defaults of the `events.perPrincipal` and `events.maxStreams` caps. */
export const EVENT_STREAMS_PER_PRINCIPAL = 8;
export const EVENT_STREAMS_MAX = 256;

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
  const perPrincipal = ctx.config.events?.perPrincipal ?? EVENT_STREAMS_PER_PRINCIPAL;
  const maxStreams = ctx.config.events?.maxStreams ?? EVENT_STREAMS_MAX;
  // Open streams: when each ends at the latest, by principal. Counted before the stream opens, so a
  // key opening thousands at once is refused past its cap rather than holding a socket each.
  const open = new Map<string, Set<{ ends: number }>>();
  let total = 0;
  r.get('/api/v1/events', requirePermission(ctx.db, ctx.oidc, 'read'), (req, res) => {
    // The client may have gone while its credentials were checked (a database or OIDC round trip):
    // its response's close already fired, so a slot taken now would never be given back.
    if (req.socket.destroyed || res.writableEnded || res.destroyed) return;
    const principal = `${req.principal?.kind ?? 'anonymous'}:${req.principal?.id ?? ''}`;
    // The last tenth of maxStreams is kept for admins and auditors: viewers filling the process
    // still leave room for those who look into why.
    const cap = req.principal && can(req.principal, 'audit') ? maxStreams : maxStreams - Math.floor(maxStreams / 10);
    const mine = open.get(principal) ?? new Set<{ ends: number }>();
    const full = mine.size >= perPrincipal ? { held: [...mine], what: `${perPrincipal} event streams per principal` }
      : total >= cap ? { held: [...open.values()].flatMap((h) => [...h]), what: `${cap} event streams in all` } : undefined;
    if (full) {
      // When the soonest stream ends at the latest; a client leaving frees a place sooner, so the
      // hint is at most a minute (docs/server.md).
      const soonest = Math.min(...full.held.map((h) => h.ends)) - Date.now();
      res.setHeader('retry-after', String(Math.max(1, Math.min(60, Math.ceil(soonest / 1000)))));
      return sendError(res, 429, 'EVENT_STREAM_LIMIT', `at most ${full.what} are open at once: close one or try again later`, { limit: full.what });
    }
    // Everything this stream holds is let go by cleanup, once, however the stream ends; it is on the
    // response's close before the slot is taken, so no path between takes one and keeps it.
    const timers: NodeJS.Timeout[] = [];
    let cleaned = false;
    const held = { ends: Date.now() + maxMs };
    const cleanup = () => {
      if (cleaned) return;
      cleaned = true;
      if (mine.delete(held)) total--;
      if (mine.size === 0 && open.get(principal) === mine) open.delete(principal);
      // clearTimeout ends intervals too (the ping and the recheck, and the lifetime's timeout).
      for (const t of timers) clearTimeout(t);
      ctx.events.off('event', send);
    };
    // The response's close: it comes when the client goes away and when the stream is ended here.
    res.on('close', cleanup);
    mine.add(held);
    open.set(principal, mine);
    total++;
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
    function send(e: { type: string; data: unknown }) {
      if (!pending) setImmediate(flush);
      pending += `event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
    }
    const end = (reason: 'UNAUTHENTICATED' | 'MAX_DURATION') => {
      if (res.writableEnded || res.destroyed) return;
      // Nothing queued for this turn leaves after the end: it was published to a principal no longer let in.
      pending = '';
      res.end(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
    };
    ctx.events.on('event', send);
    timers.push(setInterval(() => void (res.writableEnded || res.write(': ping\n\n')), PING_MS));
    let checking = false;
    timers.push(setInterval(() => {
      if (checking) return;
      checking = true;
      authenticateRequest(ctx.db, ctx.oidc, req)
        .then((auth) => void (auth.ok && can(auth.principal, 'read') ? undefined : end('UNAUTHENTICATED')))
        // A check that could not be made (database unreachable) does not count as a pass.
        .catch(() => end('UNAUTHENTICATED'))
        .finally(() => (checking = false));
    }, recheckMs));
    timers.push(setTimeout(() => end('MAX_DURATION'), maxMs));
    // Gone between the check above and here (the socket closed during writeHead): close may have fired already.
    if (req.socket.destroyed) cleanup();
  });
  return r;
}
