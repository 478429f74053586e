import express, { type Express, type Router } from 'express';
import { assertJsonDepth } from '../src/core/json.js';
import type { ServerContext } from './context.js';
import { errorHandler } from './http-error.js';
import { healthRoutes } from './routes/health.js';
import { webhookRoutes } from './routes/webhooks.js';
import { eventRoutes } from './routes/events.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { uiRoutes } from './ui/routes.js';
import { securityHeaders } from './ui/headers.js';

/** Builds the express app without listening: tests use it directly. */
export function buildApp(ctx: ServerContext, extra: Router[] = []): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(securityHeaders());
  app.use(healthRoutes(ctx));
  app.use(webhookRoutes(ctx));
  // The depth check runs on the raw bytes before JSON.parse and before any validator recurses.
  app.use('/api', express.json({ limit: ctx.config.maxBodyBytes, strict: true, verify: (_req, _res, buf) => assertJsonDepth(buf, 'request body', 'JSON_INVALID') }));
  app.use(eventRoutes(ctx));
  app.use(dashboardRoutes(ctx));
  app.use(apiKeyRoutes(ctx));
  for (const r of extra) app.use(r);
  const ui = uiRoutes(ctx);
  app.use(ui.router);
  app.locals.closeUi = ui.close;
  app.use((_req, res) => void res.status(404).json({ error: { code: 'NOT_FOUND', id: '', message: 'no such route', details: {} } }));
  app.use(errorHandler(ctx.log));
  return app;
}
