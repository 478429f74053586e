/**
 * The deploy server's REST API as the MCP tools see it. Tools act with the caller's own
 * credential through the same routes people and CI use, so roles, validation and audit are
 * exactly the API's: an MCP call can never do more than the token could over HTTP.
 */
import { ToolError } from './tool.js';
import { noAnswerReason, spokeTlsToPlainHttp } from '../core/no-answer.js';
import { jsonDepthExceeds } from '../core/json.js';
import { errorCode } from '../protocol/error-code.js';

const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;
/**
 * API calls one client has in flight at once. One MCP request may carry a batch of 100 tool calls,
 * each buffering and parsing an answer of up to 8 MiB: unqueued, a single request held gigabytes.
 */
const MAX_IN_FLIGHT = 4;

export interface ApiClientOptions {
  timeoutMs?: number;
  /** Ends every call, queued or in flight (the MCP client went away: nobody will read the answers). */
  signal?: AbortSignal;
}

export interface ApiCall {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
}

export class ApiClient {
  private readonly timeoutMs: number;
  private readonly signal?: AbortSignal;
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly base: string,
    private readonly token: string,
    opts: ApiClientOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.signal = opts.signal;
  }

  get(path: string, call: ApiCall = {}) {
    return this.request('GET', path, call);
  }

  post(path: string, call: ApiCall = {}) {
    return this.request('POST', path, call);
  }

  delete(path: string, call: ApiCall = {}) {
    return this.request('DELETE', path, call);
  }

  private async request(method: string, path: string, call: ApiCall): Promise<Record<string, unknown>> {
    // A slot freed is handed to the next call waiting (never counted down and up again, which let a new call slip in between).
    if (this.inFlight < MAX_IN_FLIGHT) this.inFlight++;
    else await new Promise<void>((go) => this.waiting.push(go));
    try {
      if (this.signal?.aborted) throw new ToolError('CANCELLED', 'the MCP client went away');
      return await this.send(method, path, call);
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.inFlight--;
    }
  }

  /**
   * Cut because the client went away. A GET changed nothing; a POST had been sent, so the server may
   * have acted (rolled back, restarted, opened a pull request): the audit must not say it did not.
   */
  private cut(method: string): ToolError {
    return method === 'GET' ? new ToolError('CANCELLED', 'the MCP client went away') : new ToolError('OUTCOME_UNKNOWN', 'the MCP client went away after the request was sent: the server may have acted');
  }

  private async send(method: string, path: string, call: ApiCall): Promise<Record<string, unknown>> {
    // Paths are built by the tools from validated arguments; encode each segment anyway.
    // Under the base URL's own path (a server behind a proxy at https://host/deploy/): a path that
    // starts with `/` would otherwise replace it.
    const base = new URL(this.base);
    const url = new URL(`${base.pathname.replace(/\/+$/, '')}${path}`, base);
    if (url.origin !== base.origin) throw new ToolError('BAD_REQUEST', 'path leaves the server');
    for (const [k, v] of Object.entries(call.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        redirect: 'error',
        signal: this.signal ? AbortSignal.any([AbortSignal.timeout(this.timeoutMs), this.signal]) : AbortSignal.timeout(this.timeoutMs),
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: call.body === undefined ? undefined : JSON.stringify(call.body),
      });
    } catch (e) {
      if (this.signal?.aborted) throw this.cut(method);
      // The reason (ECONNREFUSED: not running or another port; a TLS failure), not fetch's "TypeError".
      const hint = spokeTlsToPlainHttp(url, e) ? ' (the server answered in plain HTTP, not TLS: give its URL as http://, allowed for a server on this machine)' : '';
      throw new ToolError('SERVER_UNAVAILABLE', `the deploy server at ${base.origin} did not answer: ${noAnswerReason(e)}${hint}`);
    }
    let text: string;
    try {
      text = await readBounded(res);
    } catch (e) {
      if (e instanceof ToolError) throw e;
      if (this.signal?.aborted) throw this.cut(method);
      throw new ToolError('SERVER_UNAVAILABLE', `the deploy server's answer was cut short: ${noAnswerReason(e)}`);
    }
    let body: unknown;
    try {
      if (jsonDepthExceeds(text)) throw new Error('too deep');
      body = text.length ? JSON.parse(text) : {};
    } catch {
      throw new ToolError('BAD_RESPONSE', `the deploy server answered ${res.status} with something other than JSON`);
    }
    if (!res.ok) {
      const err = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } }).error;
      // A refusal relayed from a host carries the host's code and message: the code is kept only when shaped like one.
      // Its details (a policy proposal's compile issues: file, line, message) are what the agent needs to act on.
      const details = err?.details && typeof err.details === 'object' && !Array.isArray(err.details) && Object.keys(err.details).length ? (err.details as Record<string, unknown>) : undefined;
      throw new ToolError(errorCode(err?.code, `HTTP_${res.status}`), typeof err?.message === 'string' ? err.message : `HTTP ${res.status}`, details);
    }
    return body as Record<string, unknown>;
  }
}

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return '';
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > MAX_RESPONSE_BYTES) throw new ToolError('RESPONSE_TOO_LARGE', `the deploy server's answer is larger than ${MAX_RESPONSE_BYTES} bytes`);
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}
