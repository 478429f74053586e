import { Router } from 'express';
import type { ServerContext } from '../context.js';
import { OPENAPI } from '../openapi.js';

export function healthRoutes(ctx: ServerContext): Router {
  const r = Router();
  // Kept free of middleware and I/O: load balancers call it constantly.
  r.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  r.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    try {
      await ctx.db.query('SELECT 1 AS ok');
      checks.database = 'ok';
    } catch (e) {
      checks.database = `error: ${(e as Error).message}`;
    }
    for (const [name, probe] of Object.entries(ctx.readiness)) checks[name] = probe();
    const ready = Object.values(checks).every((v) => v === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not-ready', checks });
  });
  r.get('/openapi.json', (_req, res) => void res.json(OPENAPI));
  r.get('/metrics', async (_req, res) => {
    res.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics());
  });
  return r;
}
