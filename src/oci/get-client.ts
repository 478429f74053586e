import { connect as netConnect, isIP, type Socket } from 'node:net';
import { Readable } from 'node:stream';
import { CtError } from '../core/errors.js';
import type { NetworkGuard } from './guard.js';
import { MIN_BYTES_PER_SECOND, Pace, withinDeadline, type PaceLimits } from './pace.js';
import { Filler, release, SlabPool } from './slabs.js';

/**
 * The registry transport's client for GET and HEAD (blob bytes above all), on plain sockets.
 * Measured on a 256 MiB `ct fetch` (docs/performance.md, round five): undici's HTTP/1 parser
 * copies every received byte into its WebAssembly memory, and `node:http` copies every body
 * chunk into a fresh buffer (Node 20's parser binding); both also allocate a buffer per 64 KiB
 * socket read. Here the socket reads into recycled slabs (src/oci/slabs.ts) and the body is
 * handed on as views of them: each byte is received once and never copied.
 *
 * It reads only what it can read strictly: an HTTP/1.x status line and header block (CRLF lines,
 * token names, no folding, at most 16 KiB like undici's default), framed by a Content-Length, or
 * no body at all (HEAD, 204, 304). Any other framing (chunked, read-until-close, 1xx) is answered
 * `undefined` before a byte of body is read, and the transport asks again with undici, so such
 * registries behave exactly as before. A malformed head is a network error, as in undici.
 *
 * Where it connects is not its business: the transport checks every URL with the guard first,
 * and hands this client the guard's `lookup`, through which every socket resolves its host.
 */
export interface GetClientOptions {
  /** The network guard's lookup (guard.ts): every connection's host is resolved and checked by it. */
  lookup: NetworkGuard['lookup'];
  /**
   * Until the head has arrived, and between body reads (undici's headersTimeout, bodyTimeout);
   * also the grace before a body's minimum rate applies (pace.ts).
   */
  timeoutMs: number;
  /** The least average rate of a body, and the overall deadline (pace.ts; default 16 KiB/s, none). */
  pace?: Omit<PaceLimits, 'graceMs'>;
  /** Trust roots for https (tests); otherwise Node's. */
  ca?: string | Buffer;
}

export type ReplyBody = Readable & { dump(): Promise<void> };

export interface GetReply {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: ReplyBody;
}

const MAX_HEAD = 16 * 1024;
const CONNECT_TIMEOUT = 10_000;
/** Idle keep-alive sockets are closed after this (undici's default keepAliveTimeout). */
const IDLE_TIMEOUT = 4_000;
/** What `dump` reads to keep a connection; a longer unread rest closes it (undici's limit). */
const DUMP_LIMIT = 128 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
/**
 * What a request header value may hold (undici's rule): the head is encoded as latin1, one byte
 * per character, so a character above U+00FF would lose its high byte (U+010D U+010A → CR LF: a
 * token from a hostile token service smuggling a second request).
 */
const BAD_REQUEST_VALUE = /[^\t\x20-\x7e\x80-\xff]/;
// eslint-disable-next-line no-control-regex
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: [^\x00-\x08\x0a-\x1f\x7f]*)?$/;

function protocolError(message: string, code = 'HPE_INVALID_RESPONSE'): Error {
  return Object.assign(new Error(message), { code });
}

export class GetClient {
  readonly slabs = new SlabPool();
  private readonly idle = new Map<string, Connection[]>();
  private closing = false;

  constructor(private readonly opts: GetClientOptions) {}

  /**
   * One request, one answer. `undefined`: the answer is framed in a way this client does not
   * read (ask again with the general client). Rejects before the head for connection failures,
   * timeouts and malformed heads; body failures are NETWORK_ERROR on the body stream.
   */
  async request(url: URL, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<GetReply | undefined> {
    if (this.closing) throw protocolError('client closed', 'UND_ERR_DESTROYED');
    let lines = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n`;
    for (const [k, v] of Object.entries(headers)) {
      if (!TOKEN.test(k) || BAD_REQUEST_VALUE.test(v)) throw Object.assign(new Error(`invalid request header ${JSON.stringify(k.slice(0, 64))}`), { code: 'UND_ERR_INVALID_ARG' });
      lines += `${k}: ${v}\r\n`;
    }
    const head = Buffer.from(`${lines}\r\n`, 'latin1');
    const reused = this.takeIdle(url.origin);
    if (reused) {
      try {
        return await reused.send(head, method);
      } catch (e) {
        // A kept-alive socket the server closed meanwhile: asked again once on a new one.
        if (!(e as { stale?: boolean }).stale) throw e;
      }
    }
    // node:tls is loaded on the first https request (plain-http registries never need it).
    const tls = url.protocol === 'https:' ? await import('node:tls') : undefined;
    return new Connection(url, this.opts, this.slabs, (c) => this.putIdle(c), tls?.connect).send(head, method);
  }

  close(): void {
    this.closing = true;
    for (const list of this.idle.values()) for (const c of [...list]) c.destroy();
    this.idle.clear();
  }

  private takeIdle(origin: string): Connection | undefined {
    const list = this.idle.get(origin);
    while (list?.length) {
      const c = list.pop()!;
      if (c.usable()) return c;
    }
    return undefined;
  }

  private putIdle(c: Connection): void {
    if (this.closing) return c.destroy();
    const list = this.idle.get(c.origin) ?? [];
    this.idle.set(c.origin, list);
    list.push(c);
    c.onGone = () => list.splice(list.indexOf(c) >>> 0, 1);
  }
}

/** A request in flight on a connection. */
interface Job {
  method: 'GET' | 'HEAD';
  head: Buffer;
  body?: Body;
  /** The body's rate and the deadline, checked with every read (created with the body). */
  pace?: Pace;
  remaining: number;
  received: boolean;
  timer: NodeJS.Timeout;
  resolve: (r: GetReply | undefined) => void;
  reject: (e: unknown) => void;
}

class Connection {
  readonly origin: string;
  private readonly socket: Socket;
  private readonly filler: Filler;
  private job: Job | undefined;
  private served = 0;
  private reusable = true;
  private connected = false;
  private gone = false;
  private idleTimer: NodeJS.Timeout | undefined;
  onGone: (() => void) | undefined;

  constructor(url: URL, private readonly opts: GetClientOptions, slabs: SlabPool, private readonly toIdle: (c: Connection) => void, tlsConnect?: typeof import('node:tls').connect) {
    this.origin = url.origin;
    this.filler = new Filler(slabs);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const tls = url.protocol === 'https:';
    const port = Number(url.port) || (tls ? 443 : 80);
    const onread = { buffer: this.filler.next, callback: (n: number, buf: Uint8Array) => this.onRead(n, buf) };
    if (tls && !tlsConnect) throw new Error('https needs node:tls');
    this.socket = tlsConnect
      ? tlsConnect({ host, port, servername: isIP(host) ? undefined : host, lookup: opts.lookup as never, ALPNProtocols: ['http/1.1'], ca: opts.ca, onread } as never)
      : netConnect({ host, port, lookup: opts.lookup as never, onread } as never);
    const connectTimer = setTimeout(() => this.fail(protocolError(`connect timeout after ${CONNECT_TIMEOUT} ms`, 'UND_ERR_CONNECT_TIMEOUT')), CONNECT_TIMEOUT);
    this.socket.once(tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      this.connected = true;
    });
    this.socket.setNoDelay(true);
    this.socket.setTimeout(opts.timeoutMs, () => this.fail(protocolError(`no bytes for ${opts.timeoutMs} ms`, 'UND_ERR_BODY_TIMEOUT')));
    this.socket.on('error', (e) => this.fail(e));
    this.socket.on('close', () => {
      clearTimeout(connectTimer);
      this.fail(protocolError('the registry closed the connection', 'UND_ERR_SOCKET'));
    });
  }

  usable(): boolean {
    return !this.gone && this.reusable && this.job === undefined;
  }

  send(head: Buffer, method: 'GET' | 'HEAD'): Promise<GetReply | undefined> {
    clearTimeout(this.idleTimer);
    this.socket.ref();
    return new Promise((resolve, reject) => {
      // The head wait ends at the overall deadline too (a body is held to it with every read).
      const wait = withinDeadline(this.opts.timeoutMs, this.opts.pace?.deadline());
      const timer = setTimeout(() => this.fail(protocolError(`no answer head within ${wait} ms`, 'UND_ERR_HEADERS_TIMEOUT')), wait);
      this.job = { method, head: Buffer.alloc(0), remaining: 0, received: false, timer, resolve, reject };
      this.socket.write(head);
    });
  }

  destroy(): void {
    if (this.gone) return;
    this.gone = true;
    clearTimeout(this.idleTimer);
    this.onGone?.();
    this.socket.destroy();
    this.filler.drop();
  }

  /** The socket failed or closed: whoever waits learns it, and the connection is not reused. */
  private fail(e: unknown): void {
    const job = this.job;
    this.job = undefined;
    this.destroy();
    if (!job) return;
    clearTimeout(job.timer);
    if (job.body) {
      job.body.destroy(new CtError('NETWORK_ERROR', `${this.origin}: the answer stopped after ${job.body.received} of ${job.body.received + job.remaining} bytes (${(e as Error)?.message ?? String(e)})`, { origin: this.origin }, { cause: e }));
    } else {
      // Nothing of an answer on a reused socket the server closed or reset: safe to ask again. Not
      // after a timeout: the server may have the request, and would see it twice.
      if (this.served > 0 && !job.received && !/TIMEOUT$/.test(String((e as { code?: unknown })?.code))) Object.assign(e as object, { stale: true });
      job.reject(e);
    }
  }

  private onRead(n: number, buf: Uint8Array): boolean {
    const job = this.job;
    if (!job) {
      // Bytes nobody asked for (an idle kept-alive socket): the connection is not trusted further.
      this.filler.took(n);
      this.destroy();
      return false;
    }
    job.received = true;
    if (!job.body) return this.readHead(job, n, buf);
    return this.readBody(job, n, 0);
  }

  private readHead(job: Job, n: number, buf: Uint8Array): boolean {
    const before = job.head.length;
    // Only as much as a head may be is copied (the rest of this read is body, left in place).
    job.head = Buffer.concat([job.head, buf.subarray(0, Math.min(n, MAX_HEAD + 4 - before))]);
    const end = job.head.indexOf('\r\n\r\n', Math.max(0, before - 3), 'latin1');
    if (end < 0) {
      this.filler.took(n);
      if (job.head.length > MAX_HEAD) this.fail(protocolError(`answer head longer than ${MAX_HEAD} bytes`, 'UND_ERR_HEADERS_OVERFLOW'));
      return true;
    }
    clearTimeout(job.timer);
    let parsed: { status: number; headers: Record<string, string | string[]>; keepAlive: boolean };
    let length: number | undefined;
    let noBody: boolean;
    try {
      if (end > MAX_HEAD) throw protocolError(`answer head longer than ${MAX_HEAD} bytes`, 'UND_ERR_HEADERS_OVERFLOW');
      // Values decoded as UTF-8, as undici decodes them (a Location with raw UTF-8 bytes is followed to the same URL).
      parsed = parseHead(job.head.toString('utf8', 0, end));
      noBody = job.method === 'HEAD' || parsed.status === 204 || parsed.status === 304;
      length = noBody ? 0 : contentLength(parsed.headers);
    } catch (e) {
      this.filler.took(n);
      this.fail(e);
      return false;
    }
    const { status, headers } = parsed;
    if (status < 200 || (!noBody && (headers['transfer-encoding'] !== undefined || length === undefined))) {
      // Not a framing this client reads: nothing of the body is taken, the caller asks again.
      this.filler.took(n);
      this.job = undefined;
      this.destroy();
      job.resolve(undefined);
      return false;
    }
    if (!parsed.keepAlive) this.reusable = false;
    job.remaining = length!;
    job.pace = new Pace({ minBytesPerSecond: MIN_BYTES_PER_SECOND, deadline: () => undefined, ...this.opts.pace, graceMs: this.opts.timeoutMs });
    job.body = new Body(this, () => job.remaining);
    job.resolve({ statusCode: status, headers, body: job.body });
    return this.readBody(job, n, end + 4 - before);
  }

  /** Bytes [from, n) of the last read belong to the body (those past its length, to nobody). */
  private readBody(job: Job, n: number, from: number): boolean {
    const take = Math.min(n - from, job.remaining);
    // The idle timeout restarts with every byte: only an average rate stops a drip-feed.
    const verdict = take > 0 ? job.pace!.check(job.body!.received + take) : undefined;
    if (verdict) {
      this.filler.took(n, 0, 0); // nothing of this read is kept
      this.fail(protocolError(verdict, 'CT_TOO_SLOW'));
      return false;
    }
    if (n - from > job.remaining) this.reusable = false;
    const view = this.filler.took(n, from, from + take);
    job.remaining -= take;
    const more = view ? job.body!.deliver(view) : true;
    if (job.remaining === 0) {
      this.job = undefined;
      this.served++;
      job.body!.push(null);
      if (this.reusable && !this.gone) {
        this.socket.unref();
        this.idleTimer = setTimeout(() => this.destroy(), IDLE_TIMEOUT).unref();
        this.toIdle(this);
      } else this.destroy();
      return true;
    }
    // Paused while the reader catches up: that wait is ours, not the registry's silence.
    if (!more) {
      this.socket.setTimeout(0);
      job.pace!.paused();
    }
    return more;
  }

  resume(): void {
    if (this.gone || !this.connected) return;
    this.job?.pace?.resumed();
    this.socket.setTimeout(this.opts.timeoutMs);
    this.socket.resume();
  }

  /** The body was dropped before its end: the rest is not read, the socket not reused. */
  bodyDropped(body: Body): void {
    if (this.job?.body === body) {
      clearTimeout(this.job.timer);
      this.job = undefined;
      this.destroy();
    }
  }
}

class Body extends Readable implements ReplyBody {
  received = 0;

  constructor(private readonly conn: Connection, private readonly left: () => number) {
    super({ highWaterMark: 1 << 20 });
  }

  /** One view holding one slab reference: whoever reads it from this stream releases it. */
  deliver(view: Buffer): boolean {
    this.received += view.length;
    return this.push(view);
  }

  override _read(): void {
    this.conn.resume();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.conn.bodyDropped(this);
    cb(err);
  }

  /** Reads and drops a short rest (the connection is kept); a long one closes the connection. */
  async dump(): Promise<void> {
    if (this.readableEnded || this.destroyed) return;
    if (this.left() > DUMP_LIMIT) return void this.destroy();
    await new Promise<void>((resolve) => {
      this.on('data', (c: Buffer) => release(c));
      this.once('end', resolve);
      this.once('close', resolve);
      this.once('error', () => resolve());
      this.resume();
    });
  }
}

/** Status line and header fields, strictly (CRLF lines, token names, no folding). */
function parseHead(text: string): { status: number; headers: Record<string, string | string[]>; keepAlive: boolean } {
  const lines = text.split('\r\n');
  const m = STATUS_LINE.exec(lines[0]);
  if (!m) throw protocolError(`not an HTTP/1.x status line: ${JSON.stringify(lines[0].slice(0, 80))}`);
  const headers: Record<string, string | string[]> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const c = line.indexOf(':');
    const name = c > 0 ? line.slice(0, c) : '';
    const value = line.slice(c + 1).replace(/^[ \t]+|[ \t]+$/g, '');
    if (!TOKEN.test(name) || BAD_VALUE.test(value)) throw protocolError(`malformed header line ${JSON.stringify(line.slice(0, 80))}`, 'HPE_INVALID_HEADER_TOKEN');
    const key = name.toLowerCase();
    const had = headers[key];
    headers[key] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value];
  }
  const connection = String(headers.connection ?? '').toLowerCase();
  const keepAlive = m[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  return { status: Number(m[2]), headers, keepAlive };
}

/** The one length the answer states (repeats must agree), or undefined when it states none. */
function contentLength(headers: Record<string, string | string[]>): number | undefined {
  const v = headers['content-length'];
  if (v === undefined) return undefined;
  const values = (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim());
  if (!values.every((s) => /^\d{1,15}$/.test(s)) || new Set(values).size !== 1) throw protocolError(`invalid Content-Length ${JSON.stringify(String(v).slice(0, 80))}`, 'HPE_INVALID_CONTENT_LENGTH');
  return Number(values[0]);
}
