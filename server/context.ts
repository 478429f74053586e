import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { ServerConfig } from './config.js';
import type { Db } from './store/db.js';
import type { Metrics } from './metrics.js';
import type { JobQueue } from './queue/queue.js';
import type { OidcVerifier } from './auth/oidc.js';
import type { WebhookTrigger } from './routes/webhooks.js';

/** Everything a route needs, built once by start-up (or by a test) and passed down. */
export interface ServerContext {
  config: ServerConfig;
  db: Db;
  log: Logger;
  metrics: Metrics;
  queue: JobQueue;
  oidc: OidcVerifier;
  /** Server-sent events bus: emits 'event' with `{type, data}`. */
  events: EventEmitter;
  /** Named readiness probes returning 'ok' or a reason. */
  readiness: Record<string, () => string>;
  /** What a webhook turns into: a reconcile trigger (never a deploy by itself). */
  onTrigger(trigger: WebhookTrigger): Promise<void>;
  /**
   * The `environment/app` names the desired state in force declares (undefined when none is
   * configured or applied yet): drift and the overview tell apps it no longer declares apart.
   */
  declared?: () => Promise<ReadonlySet<string> | undefined>;
}

export function publish(ctx: Pick<ServerContext, 'events'>, type: string, data: unknown): void {
  ctx.events.emit('event', { type, data });
}
