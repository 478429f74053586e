import { Router } from 'express';
import type { ServerContext } from '../context.js';
import { requirePermission } from '../auth/middleware.js';

/** `/api/v1/events`: server-sent events of deploys, decisions and host state. */
export function eventRoutes(ctx: ServerContext): Router {
  const r = Router();
  r.get('/api/v1/events', requirePermission(ctx.db, ctx.oidc, 'read'), (req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': connected\n\n');
    const send = (e: { type: string; data: unknown }) => res.write(`event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`);
    ctx.events.on('event', send);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    req.on('close', () => {
      clearInterval(ping);
      ctx.events.off('event', send);
    });
  });
  return r;
}
