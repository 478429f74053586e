import { Router } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';

/** Bytes of events a subscriber may leave unread before its stream is closed. */
const MAX_UNREAD = 8 * 1024 * 1024;

/** `/api/v1/events`: server-sent events of deploys, decisions and host state. */
export function eventRoutes(ctx: ServerContext): Router {
  const r = Router();
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
    ctx.events.on('event', send);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(ping);
      ctx.events.off('event', send);
    });
  });
  return r;
}
