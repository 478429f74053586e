/**
 * `ct admission serve`: the admission webhooks on their own HTTPS server, with the trust store
 * and the policy directories (reloaded when they change, reload.ts: a broken file keeps the
 * previous one in force) and the registry allow-list given on the command line. src/cli loads this file by path at run time.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { PolicyStore } from '../../src/policy/store.js';
import { AdmissionJudge, APPARMOR_NODES } from '../../src/k8s/verdicts.js';
import { parseExemptions } from '../../src/k8s/exempt.js';
import type { ClientOptions } from '../../src/oci/client.js';
import { CtError } from '../../src/core/errors.js';
import { admissionHandler, type AdmissionDecisionRecord } from './handler.js';
import { AdmissionMetrics } from './metrics.js';
import { startTlsServer, type RunningTlsServer } from './tls-server.js';
import { FileWatch, TrustReloader, policyReloader, publicReloadState, type ReloadState } from './reload.js';
import { bearerTokenCheck, refuseCaller, type CallerCheck } from './caller-auth.js';

export interface AdmissionServeOptions {
  /** Unset: every address, IPv6 and IPv4 (IPv6-only and dual-stack clusters too). */
  host?: string;
  port: number;
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
  trustStore: string;
  trustedRoot?: string;
  policies: string[];
  registry: ClientOptions & { allowedRegistries: string[]; insecure?: string[] };
  environments?: string[];
  timeoutMs?: number;
  ttlSeconds?: number;
  policyReloadSeconds?: number;
  /** How often the trust store and trusted root are stat'ed for changes (ms, default 5000; directories are also watched). */
  trustReloadMs?: number;
  certReloadMs?: number;
  /** The nodes' kernels enforce AppArmor (policies requiring AppArmor can then pass). */
  nodesAppArmor?: boolean;
  /** Environments whose denials are answered as allows with a warning (audit mode). */
  auditEnvironments?: string[];
  /** Image patterns let through unverified (src/k8s/exempt.ts). */
  exemptImages?: string[];
  /**
   * Also serve `GET /metrics` over plain HTTP on this port (0: any), for Prometheus without the
   * webhook's client certificate or token (which would also let it call the webhooks).
   */
  metricsPort?: number;
  /** Bearer tokens the webhook callers must present (caller-auth.ts); `/healthz` stays open for probes. */
  tokenFile?: string;
  /** Also called for every recorded decision (not for dry runs). */
  onDecision?: (r: AdmissionDecisionRecord) => void;
}

interface Io {
  out(t: string): void;
  err(t: string): void;
}

export interface RunningAdmission extends RunningTlsServer {
  /** `http://host:port` of the plain metrics listener (`metricsPort`). */
  metricsUrl?: string;
  judge: AdmissionJudge;
  policies: PolicyStore;
  /** What is in force and how reloads went (`GET /healthz` shows it without the error messages). */
  reloads: { trust: ReloadState; policies: ReloadState };
}

/** The path the handler answers as `GET /healthz`, parsed the way it parses it. */
function isHealthz(url: string | undefined): boolean {
  // A request line such as `GET //[ HTTP/1.1` is no URL: this runs outside the handler's own
  // error handling, where a throw ended the process (every replica, one request each).
  try {
    return new URL(url ?? '/', 'http://admission').pathname === '/healthz';
  } catch {
    return false;
  }
}

export async function startAdmission(o: AdmissionServeOptions, log = pino({ level: process.env.LOG_LEVEL ?? 'info' })): Promise<RunningAdmission> {
  // Read before anything is served: a token file that does not load stops the command (fail closed).
  const callers = o.tokenFile ? bearerTokenCheck(o.tokenFile, log) : undefined;
  try {
    return await serveWith(o, log, callers);
  } catch (e) {
    callers?.close();
    throw e;
  }
}

async function serveWith(o: AdmissionServeOptions, log: pino.Logger, callers: CallerCheck | undefined): Promise<RunningAdmission> {
  const exempt = parseExemptions(o.exemptImages ?? [], '--exempt-image');
  const trust = new TrustReloader({ trustStore: o.trustStore, ...(o.trustedRoot ? { trustedRoot: o.trustedRoot } : {}) }, log);
  await trust.reload();
  // Nothing valid at start: refuse to start (an operator sees it at once; the API server, with
  // failurePolicy Fail, denies meanwhile). Later failures keep what is in force.
  if (!trust.get()) throw new CtError((trust.state.lastError?.code ?? 'TRUST_STORE_INVALID') as never, `trust store failed to load: ${trust.state.lastError?.message ?? 'unknown error'}`, {});
  const policies = new PolicyStore(o.policies);
  const loaded = await policies.reload();
  if (!loaded.ok) throw new CtError('POLICY_INVALID', `policies failed to load: ${loaded.error?.message ?? 'unknown error'}`, { issues: loaded.issues.slice(0, 20) });
  const policy = policyReloader(policies, log);
  await policy.reload();
  const judge = new AdmissionJudge({ trust: () => trust.get(), policies: () => policies.current, registry: o.registry, ...(o.nodesAppArmor ? { nodes: APPARMOR_NODES } : {}), ...(o.ttlSeconds ? { ttlMs: o.ttlSeconds * 1000 } : {}) });
  const metrics = new AdmissionMetrics(undefined, o.environments);
  const handler = admissionHandler({
    judge,
    ...(o.environments ? { environments: o.environments } : {}),
    ...(o.auditEnvironments?.length ? { auditEnvironments: o.auditEnvironments } : {}),
    exempt,
    metrics,
    serveMetrics: true,
    callersAuthenticated: Boolean(callers || o.clientCaFile),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    log,
    health: () => ({ trust: publicReloadState(trust.state), policies: publicReloadState(policy.state) }),
    onDecision: (r) => {
      log.info({ decision: r }, 'admission decision recorded');
      o.onDecision?.(r);
    },
  });
  // The caller is checked before the handler reads a byte of the body; probes reach /healthz without a token.
  const guarded: typeof handler = callers
    ? (req, res) => (isHealthz(req.url) || callers.allows(req) ? handler(req, res) : refuseCaller(req, res, '--token-file', metrics))
    : handler;
  const server = await startTlsServer({ ...(o.host !== undefined ? { host: o.host } : {}), port: o.port, certFile: o.certFile, keyFile: o.keyFile, ...(o.clientCaFile ? { clientCaFile: o.clientCaFile } : {}), reloadIntervalMs: o.certReloadMs, log }, guarded);
  const every = Math.max(5, o.policyReloadSeconds ?? 60) * 1000;
  const timer = setInterval(() => void policy.reload(), every);
  timer.unref();
  const trustFiles = [o.trustStore, ...(o.trustedRoot ? [o.trustedRoot] : [])];
  const watches = [
    FileWatch.forFiles(trustFiles, o.trustReloadMs ?? 5000, () => void trust.reload(), log),
    new FileWatch(o.policies, o.policies, o.trustReloadMs ?? 5000, () => void policy.reload(), log),
  ];
  const metricsServer = o.metricsPort === undefined ? undefined : await serveMetrics(metrics, o.host, o.metricsPort).catch(async (e: unknown) => {
    await server.close();
    throw e;
  });
  return {
    ...server,
    ...(metricsServer ? { metricsUrl: metricsServer.url } : {}),
    judge,
    policies,
    reloads: { trust: trust.state, policies: policy.state },
    async close() {
      clearInterval(timer);
      callers?.close();
      for (const w of watches) w.close();
      await server.close();
      await metricsServer?.close();
    },
  };
}

/** `GET /metrics` only, plain HTTP: counts and timings, no names, images or verdict text. */
async function serveMetrics(metrics: AdmissionMetrics, host: string | undefined, port: number): Promise<{ url: string; close(): Promise<void> }> {
  // Bounded like the webhook's own listener: whoever reaches the port cannot hold it open.
  const srv = createServer({ headersTimeout: 10_000, requestTimeout: 15_000, keepAliveTimeout: 5_000 }, (req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('GET /metrics\n');
      return;
    }
    void metrics.registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType, 'cache-control': 'no-store' }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  srv.maxConnections = 64;
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    const listening = () => {
      srv.off('error', reject);
      resolve();
    };
    if (host === undefined) srv.listen(port, listening);
    else srv.listen(port, host, listening);
  });
  srv.on('error', () => undefined); // an accept() failure later: the listener stays, the process too
  const a = srv.address() as AddressInfo;
  const h = host ?? a.address;
  return {
    url: `http://${h.includes(':') ? `[${h}]` : h}:${a.port}`,
    close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }),
  };
}

export async function serveAdmission(o: AdmissionServeOptions, io: Io): Promise<number> {
  const running = await startAdmission(o);
  io.out(
    [
      `Cerro Torre admission webhooks listening on ${running.url}`,
      `  mutate:   ${running.url}/mutate/<environment>   validate: ${running.url}/validate/<environment>   health: ${running.url}/healthz   metrics: ${running.metricsUrl ? `${running.metricsUrl}/metrics` : `${running.url}/metrics${o.tokenFile ? ' (with a token)' : ''}`}`,
      `  certificate: ${o.certFile} (reloaded when it changes)${o.clientCaFile ? `; client certificates from ${o.clientCaFile}` : ''}`,
      `  registries: ${o.registry.allowedRegistries.join(', ') || 'none allow-listed: every image is denied'}`,
      `  policies: ${o.policies.join(', ')}`,
      ...(o.auditEnvironments?.length ? [`  audit only (denials answered as allows with a warning): ${o.auditEnvironments.join(', ')}`] : []),
      ...(o.exemptImages?.length ? [`  exempt from verification: ${o.exemptImages.join(', ')}`] : []),
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.close();
  return 0;
}
