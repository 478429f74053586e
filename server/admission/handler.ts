/**
 * The admission endpoints as a plain Node request handler, so that the same code serves
 * `ct admission serve` (its own HTTPS server) and a path of the deploy server:
 *
 *   POST /mutate/<environment>     MutatingWebhookConfiguration
 *   POST /validate/<environment>   ValidatingWebhookConfiguration
 *   GET  /healthz
 *
 * The environment is in the path: each webhook entry of the install manifests selects namespaces
 * by their `cerro-torre.dev/environment` label and calls the path of that environment, so the
 * label names the Gatekeeper environment without the webhook reading the Kubernetes API.
 *
 * Every request that carries a uid gets a well-formed AdmissionReview; anything else gets an HTTP
 * error, which the API server treats as a failed call: with failurePolicy Fail, a denial. The
 * answer is due before the API server's own deadline (its `?timeout=` query, capped by ours): past
 * it, the request is denied and the verification goes on in the background, so the next attempt
 * finds the verdict cached.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { CtError } from '../../src/core/errors.js';
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../../src/core/json.js';
import { auditAnswer, denyResponse, parseReview, type AdmissionReviewOut } from '../../src/k8s/admission-review.js';
import { denyFor, mutate, validate, type ImageJudge, type StrippedCapabilities } from '../../src/k8s/admit.js';
import { DNS_LABEL_RE } from '../../src/k8s/dns-label.js';
import type { Exemptions } from '../../src/k8s/exempt.js';
import type { AdmissionMetrics } from './metrics.js';

export interface AdmissionDecisionRecord {
  time: string;
  uid: string;
  webhook: 'mutate' | 'validate';
  environment: string;
  kind: string;
  namespace?: string;
  name?: string;
  allowed: boolean;
  message?: string;
  /** In an audit environment: the denial that was turned into an allow. */
  wouldDeny?: string;
  patched: boolean;
  /**
   * Mutation: the capabilities the patch took from each container (the runtime's defaults, what it
   * added beyond the granted ones), in audit-only environments too, where the patch applies as
   * usual and nothing is denied: what changed in the pod is on record.
   */
  capabilitiesStripped?: StrippedCapabilities[];
}

export interface AdmissionHandlerOptions {
  judge: ImageJudge;
  /** Environments that may be named in the path; others are refused (404). Empty: any name. */
  environments?: string[];
  /** Environments whose denials are answered as allows with a warning (audit mode, auditAnswer). */
  auditEnvironments?: string[];
  /** Images let through unverified (exempt.ts). */
  exempt?: Exemptions;
  /** Our own answer deadline in ms (default 9000: under the manifests' timeoutSeconds of 10). */
  timeoutMs?: number;
  /** AdmissionReview bodies larger than this are refused (default 3 MiB, the API server's own object limit). */
  maxBodyBytes?: number;
  /**
   * Bytes of AdmissionReview bodies held at once, all requests together (default 12 MiB: four of
   * the largest, hundreds of real ones); a request past it is refused (503) as it comes.
   */
  maxInFlightBytes?: number;
  /**
   * Of those, what the requests of one remote address may hold at once. Default: all of it when
   * every caller is authenticated (`callersAuthenticated`: only the API server gets here), else
   * half, so that one unauthenticated address cannot take the whole budget while the API server
   * (a few addresses carrying every review of a rollout) keeps room for its bursts.
   */
  maxInFlightPerCaller?: number;
  /** True when a caller check (token file, client CA) runs before this handler. */
  callersAuthenticated?: boolean;
  log?: Logger;
  /** Merged into the `GET /healthz` answer (what is loaded, reload errors). */
  health?: () => Record<string, unknown>;
  /** Called for every decision of a request that is not a dry run. */
  onDecision?: (r: AdmissionDecisionRecord) => void;
  /** Counted here; served as `GET /metrics` when the handler owns its registry (`serveMetrics`). */
  metrics?: AdmissionMetrics;
  /** Answer `GET /metrics` from `metrics` (ct admission serve; the deploy server has its own /metrics). */
  serveMetrics?: boolean;
}

const ENV_RE = DNS_LABEL_RE;
/** Time kept back from the API server's deadline for the answer to travel. */
const MARGIN_MS = 500;

export function admissionHandler(o: AdmissionHandlerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  // A misspelt audit environment would enforce where a team meant to audit: refuse to start.
  if (o.auditEnvironments?.length && !o.environments?.length) throw new CtError('USAGE', 'audit environments need the list of environments (--environment, admission.environments): a misspelt one would be enforced', {});
  for (const a of o.auditEnvironments ?? []) {
    if (!ENV_RE.test(a) || (o.environments?.length && !o.environments.includes(a))) {
      throw new CtError('USAGE', `audit environment ${JSON.stringify(a.slice(0, 64))} is not ${o.environments?.length ? `one of the environments (${o.environments.join(', ')})` : 'an environment name'}`, {});
    }
  }
  const maxBody = o.maxBodyBytes ?? 3 * 1024 * 1024;
  // Each request's body, then its parsed object (several times the size), is held until it is
  // answered: without a bound, a few dozen callers posting 3 MiB at once (no caller is
  // authenticated by default) exhausted the webhook's memory, and its restarts, with
  // failurePolicy Fail, denied every pod of the cluster's labelled namespaces meanwhile.
  // A bound shared by all lets one caller take it all, and deny every pod as surely: each remote
  // address holds at most maxInFlightPerCaller (unless every caller is authenticated), a body is
  // read until the deadline only, and nothing of the request is held once it is answered.
  const budget = { limit: o.maxInFlightBytes ?? 12 * 1024 * 1024, used: 0 };
  const perCaller = o.maxInFlightPerCaller ?? (o.callersAuthenticated ? budget.limit : Math.max(maxBody, Math.floor(budget.limit / 2)));
  const callers = new Map<string, number>();
  const ours = o.timeoutMs ?? 9000;
  return (req, res) => {
    void handle(req, res).catch((e) => {
      o.log?.error({ err: (e as Error).message }, 'admission handler failed');
      if (!res.headersSent) send(res, 500, { error: 'internal error' });
      else res.destroy();
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (o.metrics) res.once('finish', () => res.statusCode >= 400 && o.metrics!.httpError(res.statusCode));
    const url = new URL(req.url ?? '/', 'http://admission');
    if (req.method === 'GET' && url.pathname === '/healthz') return send(res, 200, { status: 'ok', ...o.health?.() });
    if (req.method === 'GET' && url.pathname === '/metrics' && o.serveMetrics && o.metrics) {
      const text = await o.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': o.metrics.registry.contentType, 'cache-control': 'no-store' });
      return void res.end(text);
    }
    const m = /^\/(mutate|validate)\/([^/]+)$/.exec(url.pathname);
    if (!m) return send(res, 404, { error: 'no such webhook: POST /mutate/<environment> or /validate/<environment>' });
    const webhook = m[1] as 'mutate' | 'validate';
    const environment = m[2];
    if (!ENV_RE.test(environment) || (o.environments?.length && !o.environments.includes(environment))) return send(res, 404, { error: `unknown environment ${JSON.stringify(environment.slice(0, 64))}` });
    if (req.method !== 'POST') return send(res, 405, { error: 'POST an AdmissionReview' });
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) return send(res, 415, { error: 'content-type must be application/json' });
    const who = req.socket.remoteAddress ?? '';
    let held = 0;
    const take = (n: number): Taken => {
      const mine = callers.get(who) ?? 0;
      if (mine + n > perCaller) return 'caller';
      if (budget.used + n > budget.limit) return 'busy';
      budget.used += n;
      callers.set(who, mine + n);
      held += n;
      return 'ok';
    };
    try {
      await answer(req, res, url, webhook, environment, take);
    } finally {
      // Answered (or given up): the verification may go on, but holds nothing of the request.
      budget.used -= held;
      const left = (callers.get(who) ?? 0) - held;
      if (left > 0) callers.set(who, left);
      else callers.delete(who);
    }
  }

  /** Reads, parses and answers one webhook call; returns once nothing of the request is held. */
  async function answer(req: IncomingMessage, res: ServerResponse, url: URL, webhook: 'mutate' | 'validate', environment: string, take: (n: number) => Taken): Promise<void> {
    const started = Date.now();
    const deadline = started + Math.max(100, Math.min(ours, apiServerTimeout(url) - MARGIN_MS));
    const body = await readBody(req, maxBody, take, deadline);
    // Past the deadline the API server has given up: the connection is closed, nobody to answer.
    if (body === 'late') return;
    if (body === 'caller') return void send(res, 503, { error: `this caller holds ${perCaller} bytes of requests already: retry` });
    if (body === 'busy') return void send(res, 503, { error: `the webhook holds ${budget.limit} bytes of requests already: retry` });
    if (body === undefined) return void send(res, 413, { error: `AdmissionReview larger than ${maxBody} bytes` });
    // Real AdmissionReviews nest about 25 deep (managedFields included); JSON.parse of a body
    // nested a million deep holds the event loop for seconds, every other admission waiting.
    if (jsonDepthExceeds(body)) return void send(res, 400, { error: `AdmissionReview nested deeper than ${MAX_JSON_DEPTH} levels` });
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      return void send(res, 400, { error: 'body is not JSON' });
    }
    const parsed = parseReview(json);
    if (!parsed.ok) {
      // Without a uid no response can be matched to the request: an HTTP error is the denial.
      if (!parsed.uid) return void send(res, 400, { error: parsed.message });
      const denied = denyResponse(parsed.uid, 'ADMISSION_INVALID', parsed.message, { httpCode: 400 });
      o.metrics?.answered(webhook, environment, 'denied', denied.response.status?.message, (Date.now() - started) / 1000);
      return void send(res, 200, denied);
    }
    const request = parsed.request;
    // The verification outlives a late answer in the judge (which caches it for the retry), not in
    // mutate/validate: once answered they are let go, and with them the request they hold.
    const { judge, letGo } = abandonable(o.judge);
    const stripped: StrippedCapabilities[] = [];
    const work = (webhook === 'mutate' ? mutate : validate)(request, { judge, environment, ...(o.exempt ? { exempt: o.exempt } : {}), stripped });
    let answered: AdmissionReviewOut;
    try {
      answered = await raceDeadline(work, deadline, request.uid, webhook);
    } finally {
      letGo();
      await work.catch(() => undefined);
    }
    const { out, wouldDeny } = o.auditEnvironments?.includes(environment) ? auditAnswer(answered) : { out: answered, wouldDeny: undefined };
    const r = out.response;
    if (!request.dryRun) {
      o.onDecision?.({
        time: new Date().toISOString(),
        uid: request.uid,
        webhook,
        environment,
        kind: `${request.kind.group}/${request.kind.version}/${request.kind.kind}`,
        ...(request.namespace ? { namespace: request.namespace } : {}),
        ...(request.name ? { name: request.name } : {}),
        allowed: r.allowed,
        ...(r.status ? { message: r.status.message } : {}),
        ...(wouldDeny ? { wouldDeny } : {}),
        patched: r.patch !== undefined,
        // Only when the patch goes out: an audited denial or a late answer carries none.
        ...(r.allowed && r.patch !== undefined && stripped.length > 0 ? { capabilitiesStripped: stripped } : {}),
      });
    }
    o.metrics?.answered(webhook, environment, wouldDeny ? 'audited' : r.allowed ? 'allowed' : 'denied', wouldDeny ?? r.status?.message, (Date.now() - started) / 1000);
    const logged = { webhook, environment, uid: request.uid, allowed: r.allowed, dryRun: request.dryRun, ms: Date.now() - started };
    if (wouldDeny) o.log?.warn({ ...logged, wouldDeny, namespace: request.namespace, name: request.name }, 'admission audit: would deny');
    else o.log?.info(logged, 'admission decision');
    send(res, 200, out);
  }
}

type Taken = 'ok' | 'busy' | 'caller';

/**
 * The judge as one request sees it: `letGo` settles its pending calls (denied), while the calls
 * themselves go on in `judge` with only the image reference, to be cached for the next attempt.
 */
function abandonable(judge: ImageJudge): { judge: ImageJudge; letGo: () => void } {
  let letGo!: () => void;
  const gone = new Promise<never>((_, reject) => (letGo = () => reject(new CtError('ADMISSION_DEADLINE', 'answered already', {}))));
  gone.catch(() => undefined);
  return {
    judge: { pin: (i) => Promise.race([judge.pin(i), gone]), judge: (p, e) => Promise.race([judge.judge(p, e), gone]) },
    letGo,
  };
}

/** The API server appends `?timeout=10s` (the webhook's timeoutSeconds) to every call. */
function apiServerTimeout(url: URL): number {
  const t = /^(\d{1,3})s$/.exec(url.searchParams.get('timeout') ?? '');
  return t ? Number(t[1]) * 1000 : 10_000;
}

async function raceDeadline(work: Promise<AdmissionReviewOut>, deadline: number, uid: string, webhook: string): Promise<AdmissionReviewOut> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<AdmissionReviewOut>((resolve) => {
    timer = setTimeout(
      () => resolve(denyFor(uid, new CtError('ADMISSION_DEADLINE', `${webhook}: no verdict within the webhook deadline; verification goes on in the background and a retry will find it cached`, {}))),
      Math.max(0, deadline - Date.now()),
    );
  });
  // A verification that fails after the deadline has nobody waiting: observe it.
  work.catch(() => undefined);
  try {
    return await Promise.race([work.catch((e) => denyFor(uid, e)), late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The body, undefined when larger than `max`, 'busy' or 'caller' when `take` (the in-flight
 * budget, all callers' or this one's) refuses a chunk, 'late' when it is not in by `deadline`: the
 * request is then destroyed, so that a caller sending all but a few bytes and stalling holds its
 * bytes until the deadline, not for as long as the server lets a request last (the deploy server
 * sets no limit).
 */
async function readBody(req: IncomingMessage, max: number, take: (n: number) => Taken, deadline: number): Promise<Buffer | undefined | Exclude<Taken, 'ok'> | 'late'> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) {
    req.resume();
    return undefined;
  }
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    req.destroy();
  }, Math.max(0, deadline - Date.now()));
  const parts: Buffer[] = [];
  let n = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > max) {
        req.resume();
        return undefined;
      }
      const taken = take(chunk.length);
      if (taken !== 'ok') {
        req.resume();
        return taken;
      }
      parts.push(chunk);
    }
  } catch (e) {
    if (late) return 'late';
    throw e;
  } finally {
    clearTimeout(timer);
  }
  return late ? 'late' : Buffer.concat(parts);
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}
