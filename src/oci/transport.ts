import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { CtError } from '../core/errors.js';
import { GetClient, type ReplyBody } from './get-client.js';
import { parseChallenges } from './challenge.js';
import { readRegistryJson } from './remote-json.js';
import type { Credentials } from './credentials.js';
import type { NetworkGuard } from './guard.js';
import { MIN_BYTES_PER_SECOND, Pace, pastDeadline, withinDeadline } from './pace.js';
import { spokeTlsToPlainHttp } from '../core/no-answer.js';

/**
 * HTTP to one registry with the SPEC §3 rules built in:
 * - the Authorization header (basic credentials or a bearer token) is only ever sent to the
 *   registry's own origin (scheme + host + port as in the reference);
 * - a bearer realm on another host gets an anonymous token request (never the credentials);
 * - redirects are followed by hand; a hop to another origin loses the Authorization header, and
 *   every hop's host passes the network guard first;
 * - every socket resolves its host through the guard's lookup (see guard.ts), and every URL
 *   (first hop, redirect, token realm, upload location) passes guard.assertUrlAllowed in
 *   `connect` before a request is made, IP literals included.
 *
 * GETs and HEADs (manifests, blobs, token requests) go through get-client.ts, which reads answers
 * into recycled buffers without copying them (the bulk of `ct fetch`); everything else, and any
 * answer that client does not read (chunked, unframed), through undici's `request` (the engine
 * under Node's fetch, loaded on first use): it takes Node streams as bodies without WHATWG-stream
 * conversion. Both get the guarded lookup, and both are reached only through `connect`.
 */
export interface TransportOptions {
  guard: NetworkGuard;
  credentials?: Credentials;
  /** Speak http:// instead of https:// to the registry (local test registries). */
  plainHttp?: boolean;
  /** Headers timeout in ms for every request, the idle timeout of bodies, and their grace before the minimum rate applies (default 60 s). */
  timeoutMs?: number;
  /** The least average rate of every answer body after `timeoutMs` (default 16 KiB/s, pace.ts). */
  minBytesPerSecond?: number;
  /** Epoch ms after which no request is made and every answer still arriving fails (default none). */
  deadline?: number;
  userAgent?: string;
}

export type Body = Buffer | (() => Readable);

export interface SendOptions {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below the registry origin (`/v2/...`) or an absolute URL (upload locations). */
  url: string;
  headers?: Record<string, string>;
  body?: Body;
  /** Token scope actions needed (`pull`, `pull,push`, or `delete` for a manifest DELETE). */
  actions: 'pull' | 'pull,push' | 'delete';
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: ReplyBody;
  /** The URL that answered (after redirects). */
  url: string;
}

const MAX_REDIRECTS = 5;
/** Interim (1xx) answers taken before a final one: an honest server sends one or two (103 Early Hints). */
const MAX_INTERIM_ANSWERS = 4;

/** One answer, from either client. */
interface Answer {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: ReplyBody;
}

export class RegistryTransport {
  readonly origin: string;
  private agent: Promise<Dispatcher> | undefined;
  private readonly gets: GetClient;
  private readonly tokens = new Map<string, string>();
  private basicActive = false;
  /** The overall deadline (epoch ms); a caller may move it once it knows how much is to come. */
  deadline: number | undefined;

  constructor(readonly registryHost: string, readonly repository: string, private readonly opts: TransportOptions) {
    this.origin = `${opts.plainHttp ? 'http' : 'https'}://${registryHost}`;
    this.deadline = opts.deadline;
    this.gets = new GetClient({ lookup: opts.guard.lookup, timeoutMs: this.timeoutMs, pace: { minBytesPerSecond: this.minRate, deadline: () => this.deadline } });
  }

  private get timeoutMs(): number {
    return this.opts.timeoutMs ?? 60000;
  }

  private get minRate(): number {
    return this.opts.minBytesPerSecond ?? MIN_BYTES_PER_SECOND;
  }

  async close(): Promise<void> {
    this.gets.close();
    if (this.agent) await (await this.agent).close();
  }

  /** undici, loaded on first use (~70 ms of start-up a `ct fetch` from a plain registry never needs). */
  private async undici(): Promise<{ agent: Dispatcher; request: typeof import('./http.js').request }> {
    const http = import('./http.js');
    this.agent ??= http.then(
      ({ Agent }) =>
        new Agent({
          connect: { lookup: this.opts.guard.lookup as never },
          headersTimeout: this.opts.timeoutMs ?? 60000,
          bodyTimeout: this.opts.timeoutMs ?? 60000,
          connections: 16,
        }),
    );
    return { agent: await this.agent, request: (await http).request };
  }

  private authFor(url: URL, actions: string): string | undefined {
    if (url.origin !== this.origin) return undefined;
    const token = this.tokens.get(actions) ?? (actions === 'pull' ? this.tokens.get('pull,push') : undefined);
    if (token) return `Bearer ${token}`;
    if (this.basicActive && this.opts.credentials) return basic(this.opts.credentials);
    return undefined;
  }

  /** Sends a request, answering one auth challenge and following redirects. */
  async send(o: SendOptions): Promise<Reply> {
    let reply = await this.sendFollowing(o);
    if (reply.status === 401) {
      const challenge = reply.headers['www-authenticate'];
      await reply.body.dump();
      await this.authenticate(challenge, o.actions);
      reply = await this.sendFollowing(o);
      if (reply.status === 401) {
        await reply.body.dump();
        throw new CtError('REGISTRY_AUTH_FAILED', `${this.registryHost}: ${o.method} ${pathOf(o.url)} was refused (401) ${this.opts.credentials ? 'with the configured credentials' : 'and no credentials are configured for this registry'}`, { registry: this.registryHost });
      }
    }
    return reply;
  }

  private async sendFollowing(o: SendOptions): Promise<Reply> {
    let url = new URL(o.url, this.origin);
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'cerro-torre', ...o.headers };
      const auth = this.authFor(url, o.actions);
      if (auth) headers.authorization = auth;
      const body = o.body === undefined ? undefined : Buffer.isBuffer(o.body) ? o.body : o.body();
      let res: Answer;
      try {
        res = await this.connect(url, { method: o.method, headers, body });
      } catch (e) {
        if (body && !Buffer.isBuffer(body)) body.destroy();
        throw networkError(e, url);
      }
      if (res.statusCode >= 300 && res.statusCode < 400 && res.statusCode !== 304 && res.headers.location) {
        await res.body.dump();
        if (hop >= MAX_REDIRECTS) throw new CtError('REGISTRY_ERROR', `${this.registryHost}: more than ${MAX_REDIRECTS} redirects for ${pathOf(o.url)}`, { registry: this.registryHost });
        const next = new URL(String(res.headers.location), url);
        if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new CtError('REGISTRY_ERROR', `redirect to unsupported scheme ${next.protocol}`, { location: next.href.slice(0, 200) });
        url = next;
        continue;
      }
      return { status: res.statusCode, headers: res.headers, body: res.body, url: url.href };
    }
  }

  /** The only place a request leaves: the URL passes the guard first, whatever its source. */
  private async connect(url: URL, o: { method: SendOptions['method']; headers: Record<string, string>; body?: Buffer | Readable }): Promise<Answer> {
    const late = pastDeadline(this.deadline);
    if (late) throw new CtError('NETWORK_ERROR', `${url.host}: ${o.method} ${url.pathname} not sent, ${late}`, { host: url.host });
    await this.opts.guard.assertUrlAllowed(url);
    if ((o.method === 'GET' || o.method === 'HEAD') && o.body === undefined) {
      const answer = await this.gets.request(url, o.method, o.headers);
      if (answer) return answer;
    }
    const { agent, request } = await this.undici();
    const res = await this.finalHead(url, o, (signal, onInfo) => request(url, agent, { ...o, headersTimeout: withinDeadline(this.timeoutMs, this.deadline), signal, onInfo }));
    const pace = new Pace({ minBytesPerSecond: this.minRate, graceMs: this.timeoutMs, deadline: () => this.deadline });
    return { ...res, body: paced(res.body as ReplyBody, pace, url) };
  }

  /**
   * undici's wait for the final head, bounded by our own timer: undici restarts its headersTimeout
   * with every interim (1xx) answer, so a registry sending `102 Processing` just inside the
   * timeout, again and again, held a request (and a deploy or admission slot) for ever, the
   * overall deadline included (it reaches undici only as that timeout). A request without a body
   * has `timeoutMs` (within the deadline) from the send to its final head; one with a body (an
   * upload, whose sending undici times itself) the time to the deadline. More than
   * MAX_INTERIM_ANSWERS interim answers end any request at once.
   */
  private async finalHead<T>(url: URL, o: { method: string; body?: unknown }, send: (signal: AbortSignal, onInfo: () => void) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    let interim = 0;
    const fail = (why: string): void => ac.abort(new CtError('NETWORK_ERROR', `${url.host}: no final answer to ${o.method} ${url.pathname}: ${why}`, { host: url.host }));
    const wait = o.body === undefined ? withinDeadline(this.timeoutMs, this.deadline) : this.deadline === undefined ? undefined : withinDeadline(Infinity, this.deadline);
    const timer = wait === undefined ? undefined : setTimeout(() => fail(`${o.body === undefined ? `no answer head within ${wait} ms` : 'the overall deadline has passed'}${interim ? ` (after ${interim} interim 1xx answers)` : ''}`), wait);
    try {
      return await send(ac.signal, () => {
        if (++interim > MAX_INTERIM_ANSWERS) fail(`more than ${MAX_INTERIM_ANSWERS} interim (1xx) answers`);
      });
    } finally {
      clearTimeout(timer);
    }
  }

  private async authenticate(header: string | string[] | undefined, actions: SendOptions['actions']): Promise<void> {
    const challenges = parseChallenges(header);
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer?.params.realm) {
      this.tokens.set(actions, await this.fetchToken(bearer.params, actions));
      return;
    }
    if (challenges.some((c) => c.scheme === 'basic') && this.opts.credentials) {
      this.basicActive = true;
      return;
    }
    throw new CtError('REGISTRY_AUTH_FAILED', `${this.registryHost}: authentication required (${challenges.map((c) => c.scheme).join(', ') || 'no challenge'})${this.opts.credentials ? '' : ' and no credentials are configured for this registry'}`, { registry: this.registryHost });
  }

  /**
   * Token endpoint request (distribution token auth). Credentials go only to a realm on the
   * registry's own origin; a realm elsewhere gets an anonymous request (docs/registry.md).
   */
  private async fetchToken(params: Record<string, string>, actions: string): Promise<string> {
    let realm: URL;
    try {
      realm = new URL(params.realm);
    } catch {
      throw new CtError('REGISTRY_AUTH_FAILED', `${this.registryHost}: bearer realm ${JSON.stringify(params.realm)} is not a URL`, { registry: this.registryHost });
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new CtError('REGISTRY_AUTH_FAILED', `bearer realm scheme ${realm.protocol} refused`, { realm: realm.href });
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', `repository:${this.repository}:${actions}`);
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent ?? 'cerro-torre' };
    if (realm.origin === this.origin && this.opts.credentials) headers.authorization = basic(this.opts.credentials);
    let res: Answer;
    try {
      // No redirects: a token endpoint that redirects is not followed (undici's default).
      res = await this.connect(realm, { method: 'GET', headers });
    } catch (e) {
      throw networkError(e, realm);
    }
    if (res.statusCode !== 200) {
      await res.body.dump();
      throw new CtError('REGISTRY_AUTH_FAILED', `${this.registryHost}: token endpoint ${realm.origin}${realm.pathname} answered ${res.statusCode}`, { registry: this.registryHost, status: res.statusCode });
    }
    // The token answer is read within 1 MiB and a depth-bounded parse (a token is a few KiB).
    const json = await readRegistryJson(res.body, `${this.registryHost}: token endpoint answer`, 'REGISTRY_AUTH_FAILED', 1024 * 1024);
    const token = typeof json.token === 'string' ? json.token : typeof json.access_token === 'string' ? json.access_token : undefined;
    if (!token) throw new CtError('REGISTRY_AUTH_FAILED', `${this.registryHost}: token endpoint returned no token`, { registry: this.registryHost });
    return token;
  }
}

/**
 * undici's body with the rate and deadline checked per chunk (its bodyTimeout, like the idle
 * timeout of get-client.ts, restarts with every byte). Hooked into the instance's own `push` and
 * `_read` rather than piped through another stream, so `dump()` and the rest of undici's body
 * behave as before.
 */
function paced(body: ReplyBody, pace: Pace, url: URL): ReplyBody {
  const push = body.push.bind(body);
  const read = body._read.bind(body);
  let received = 0;
  body.push = (chunk: Buffer | null): boolean => {
    if (chunk === null) return push(chunk);
    received += chunk.length;
    const verdict = pace.check(received);
    if (verdict) {
      body.destroy(new CtError('NETWORK_ERROR', `${url.host}: the answer to ${url.pathname} stopped after ${received} bytes (${verdict})`, { host: url.host }));
      return false;
    }
    const more = push(chunk);
    if (!more) pace.paused();
    return more;
  };
  body._read = (n: number): void => {
    pace.resumed();
    read(n);
  };
  return body;
}

function basic(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64')}`;
}

function pathOf(url: string): string {
  try {
    return new URL(url, 'http://x').pathname;
  } catch {
    return url;
  }
}

/** Connection failures become NETWORK_ERROR, except a guard refusal raised inside the lookup. */
function networkError(e: unknown, url: URL): CtError {
  for (let c: unknown = e; c; c = (c as { cause?: unknown }).cause) {
    if (c instanceof CtError) return c;
  }
  const err = e as { code?: string; message?: string };
  // TLS spoken to a plain-http server: OpenSSL's words say nothing a user can act on.
  const hint = spokeTlsToPlainHttp(url, e) ? ' (the registry answered in plain HTTP, not TLS: a local test registry needs --plain-http)' : '';
  return new CtError('NETWORK_ERROR', `${url.host}: ${err?.code ?? ''} ${err?.message ?? String(e)}`.trim() + hint, { host: url.host }, { cause: e });
}
