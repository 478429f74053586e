import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import pino, { type Logger } from 'pino';
import type { Router } from 'express';
import type { ServerConfig } from './config.js';
import type { ServerContext } from './context.js';
import { buildApp } from './app.js';
import { isPostgresUrl, openDb, type Db } from './store/db.js';
import { migrate } from './store/migrations.js';
import { createMetrics } from './metrics.js';
import { JobQueue } from './queue/queue.js';
import { OidcVerifier } from './auth/oidc.js';
import { ensureBootstrapKey, hashApiKey } from './auth/api-keys.js';
import { printsTerminalLink, setConfiguredTrust } from './auth/configured-trust.js';
import type { GroupRoles } from './auth/role-mapping.js';
import { asIoError, CtError } from '../src/core/errors.js';
import { retentionConfig, startRetention } from './retention/prune.js';

export interface RunningServer {
  url: string;
  ctx: ServerContext;
  close(): Promise<void>;
}

export interface Extension {
  routers?: Router[];
  /** Called once the HTTP server listens (e.g. to accept WebSocket upgrades). */
  onListen?: (server: Server) => void;
  /** Sees every request before express; calls `next` to let express answer it (server/verify/hot-path.ts). */
  fastPath?: (req: IncomingMessage, res: ServerResponse, next: () => void) => void;
  /**
   * Called as the server stops, once its deploy queue has drained (or SHUTDOWN_DRAIN_MS passed)
   * and before it waits for its connections to end: a connection taken over by an upgrade (a
   * host's channel) is not one `closeAllConnections()` ends, so without this a stopping server
   * waited for every connected host to hang up, which none does.
   */
  closing?: () => void;
  close?: () => Promise<void>;
}

/**
 * How long a stopping server lets the deploys it runs finish before it ends its host channels:
 * within Kubernetes' default grace period (30 s) with room for the rest of the stop.
 */
export const SHUTDOWN_DRAIN_MS = 20_000;

export interface StartOptions {
  log?: Logger;
  /** Extra routers and job handlers contributed by the deploy pipeline. */
  extend?: (ctx: ServerContext) => Promise<Extension>;
}

/**
 * This replica's id (its job-queue worker id), kept in its data directory: a restarted replica is
 * recognised as itself, so hosts recorded as connected to it are not taken for another replica's.
 */
function replicaId(dataDir: string): string {
  const file = join(dataDir, 'replica-id');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  mkdirSync(dataDir, { recursive: true });
  const id = randomUUID();
  writeFileSync(file, id, { mode: 0o600 });
  return id;
}

/** Why the server could not listen, with a stable code and what to do about it. */
function listenError(e: unknown, host: string, port: number): CtError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (code === 'EADDRINUSE') return new CtError('PORT_IN_USE', `${where} is already in use (another ct serve, or another program, listens there): stop it, or set PORT (or port in CT_CONFIG)`, { host, port }, { cause: e });
  if (code === 'EACCES') return new CtError('IO_ERROR', `cannot listen on ${where}: permission denied (ports below 1024 need privileges): set PORT (or port in CT_CONFIG)`, { host, port }, { cause: e });
  if (code === 'EADDRNOTAVAIL') return new CtError('IO_ERROR', `cannot listen on ${where}: no interface of this machine has that address: set HOST (or host in CT_CONFIG)`, { host, port }, { cause: e });
  return asIoError(e, where);
}

export async function startServer(config: ServerConfig, opts: StartOptions = {}): Promise<RunningServer> {
  const log = opts.log ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  // The port first: a second server started on a taken port (a second `npm start`) must stop
  // before it touches anything, not after it migrated the database and took the running one's
  // jobs back into its queue (same data directory, same worker id). Until the app is ready its
  // requests are answered 503.
  let handler: RequestListener = (_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end('{"error":{"code":"NOT_READY","message":"the server is starting"}}');
  };
  const server: Server = createServer((req, res) => handler(req, res));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    throw listenError(e, config.host, config.port);
  }
  const closeServer = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  let db: Db | undefined;
  let lock: { release(): void } | undefined;
  try {
    if (!isPostgresUrl(config.databaseUrl)) lock = (await import('./store/sqlite.js')).lockDataDir(config.dataDir);
    db = await openDb({ databaseUrl: config.databaseUrl, sqlitePath: join(config.dataDir, 'ct.db') });
    const running = await startOn(server, db, config, log, opts, (h) => (handler = h), closeServer);
    return {
      ...running,
      async close() {
        await running.close();
        lock?.release();
      },
    };
  } catch (e) {
    await closeServer();
    await db?.close().catch(() => undefined);
    lock?.release();
    throw e;
  }
}

async function startOn(server: Server, db: Db, config: ServerConfig, log: Logger, opts: StartOptions, serve: (h: RequestListener) => void, closeServer: () => Promise<void>): Promise<RunningServer> {
  await migrate(db);
  // What this process trusts is decided from its own configuration, at every request
  // (server/auth/configured-trust.ts), never by a start writing it for all replicas.
  const loginIssuers = new Map<string, GroupRoles[]>();
  for (const o of config.login?.oidc ?? []) loginIssuers.set(o.issuer, [...(loginIssuers.get(o.issuer) ?? []), { ...o.roles }]);
  setConfiguredTrust(db, {
    bootstrapKeyHash: config.adminApiKey ? hashApiKey(config.adminApiKey) : null,
    loginIssuers,
    ciIssuers: new Set(config.oidc.map((o) => o.issuer)),
    terminalLinks: printsTerminalLink(config.host, config.login?.oidc.length ?? 0),
  });
  const bootstrap = await ensureBootstrapKey(db, config.adminApiKey);
  if (bootstrap.storedUnconfigured) log.warn('a bootstrap admin key is stored but CT_ADMIN_API_KEY is not set: this server refuses it (set it to use it)');
  if (bootstrap.configuredRevoked) log.warn('the configured CT_ADMIN_API_KEY was revoked (rotated out, or not a bootstrap key): this server refuses it; configure a new one');
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const ctx: ServerContext = {
    config,
    db,
    log,
    metrics: createMetrics(),
    queue: new JobQueue(db, { workerId: replicaId(config.dataDir) }),
    oidc: new OidcVerifier(config.oidc),
    events,
    readiness: {},
    onTrigger: async (t) => void log.info({ trigger: t }, 'webhook accepted; no desired-state repository configured'),
  };
  const ext: Extension = (await opts.extend?.(ctx)) ?? {};
  let app: ReturnType<typeof buildApp> | undefined;
  let retention: ReturnType<typeof startRetention> | undefined;
  /** What started here, stopped: on close, and when the start fails part way (the caller closes the port and the database). */
  const stopParts = async () => {
    await ctx.queue.stop();
    await retention?.stop();
    await ext.close?.();
    await (app?.locals.closeUi as (() => Promise<void>) | undefined)?.();
  };
  try {
    app = buildApp(ctx, ext.routers ?? []);
    await ctx.queue.start();
    retention = startRetention(db, retentionConfig(config.retention), log, { bundlesDir: join(config.dataDir, 'bundles') });
  } catch (e) {
    await stopParts().catch(() => undefined);
    throw e;
  }
  const fast = ext.fastPath;
  const ready = app;
  serve(fast ? (req, res) => fast(req, res, () => ready(req, res)) : ready);
  server.keepAliveTimeout = 65_000;
  ext.onListen?.(server);
  const { port } = server.address() as AddressInfo;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  return {
    url,
    ctx,
    async close() {
      // Deploys in flight finish first, over host channels still open: their hosts answer on them
      // (and download bundles over HTTP, which is still served). The queue takes no new job; the
      // running ones get SHUTDOWN_DRAIN_MS. Ending the channels first left each waiting for an
      // answer that could no longer come, for its whole host timeout (120 s), recorded as
      // HOST_UNAVAILABLE, and a SIGTERM outlasted any orchestrator's grace period.
      let budget: NodeJS.Timeout | undefined;
      await Promise.race([ctx.queue.stop(), new Promise((r) => (budget = setTimeout(r, SHUTDOWN_DRAIN_MS)))]);
      clearTimeout(budget);
      // Then the channels (a deploy still waiting is answered `offline`, and retried by the next server).
      ext.closing?.();
      await closeServer();
      await stopParts();
      await db.close();
    },
  };
}
