/**
 * How promotion reaches a forge API: through the project's one URL guard (src/oci/guard.ts), as
 * the registry client does. Every socket the forge clients open goes through one connector that
 * judges the address it connects to — an IP literal as that address, a name through the guard's
 * own lookup (so a DNS answer that changes between check and connection cannot reach an internal
 * address) — including sockets opened for redirects. A request's URL is also checked before it is
 * sent (scheme and host), so that a refused API URL fails with a clear code before anything leaves.
 */
import { isIP } from 'node:net';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import { CtError } from '../core/errors.js';
import { NetworkGuard } from '../oci/guard.js';

export interface ForgeHttp {
  /** For Octokit (`request.fetch`): checks the URL, then sends through the guarded agent. */
  fetch: typeof globalThis.fetch;
  /** For Gitbeaker (`agent`): the guarded dispatcher its requests go through. */
  agent: Agent;
  /**
   * The guard's last refusal, cleared when read. A client may wrap the connector's error in its
   * own (a global fetch from another realm even flattens it to a message): the forge asks here
   * when a request failed without an HTTP answer.
   */
  takeRefusal(): CtError | undefined;
  close(): Promise<void>;
}

export interface ForgeHttpOptions {
  /** Non-public addresses (or CIDR ranges) the forge may resolve to, e.g. 127.0.0.1 for a local stand-in. */
  allowedAddresses?: string[];
  timeoutMs?: number;
  /** The code of a refusal: promotion's by default; the deploy-status notifiers name their own. */
  code?: GuardCode;
}

export type GuardCode = 'PROMOTE_URL_NOT_ALLOWED' | 'NOTIFY_URL_NOT_ALLOWED';

function refused(e: unknown, code: GuardCode): CtError {
  const why = e instanceof CtError ? e.message : String((e as Error)?.message ?? e);
  return new CtError(code, `forge API: ${why.slice(0, 300)}`, { ...(e instanceof CtError ? e.details : {}) }, { cause: e });
}

export function forgeHttp(opts: ForgeHttpOptions = {}): ForgeHttp {
  const guard = new NetworkGuard({ allowedAddresses: opts.allowedAddresses ?? [] });
  const timeout = opts.timeoutMs ?? 30_000;
  const base = buildConnector({ lookup: guard.lookup as never, timeout });
  let refusal: CtError | undefined;
  const refuse = (e: unknown) => (refusal = refused(e, opts.code ?? 'PROMOTE_URL_NOT_ALLOWED'));
  const connect: buildConnector.connector = (o, callback) => {
    const host = o.hostname.replace(/^\[|\]$/g, '');
    // The guarded lookup is never called for an IP literal: judge the literal here.
    if (isIP(host) && !guard.addressAllowed(host)) {
      callback(refuse(new CtError('REGISTRY_NOT_ALLOWED', `${host} is a private, loopback, link-local or reserved address and is not allowed`, { host })), null);
      return;
    }
    base(o, (err, socket) => (err ? callback(err instanceof CtError ? refuse(err) : err, null) : callback(null, socket!)));
  };
  const agent = new Agent({ connect, headersTimeout: timeout, bodyTimeout: timeout });
  const guarded = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    try {
      await guard.assertUrlAllowed(url);
    } catch (e) {
      throw refuse(e);
    }
    return undiciFetch(input as never, { ...(init as object), dispatcher: agent } as never);
  }) as unknown as typeof globalThis.fetch;
  return {
    fetch: guarded,
    agent,
    takeRefusal: () => {
      const r = refusal;
      refusal = undefined;
      return r;
    },
    close: () => agent.close(),
  };
}

/** The guard's refusal, when it is somewhere in an error's cause chain (clients wrap it). */
export function guardRefusal(e: unknown): CtError | undefined {
  let x: unknown = e;
  for (let i = 0; i < 6 && x; i++) {
    if (x instanceof CtError && (x.code === 'PROMOTE_URL_NOT_ALLOWED' || x.code === 'NOTIFY_URL_NOT_ALLOWED')) return x;
    x = (x as { cause?: unknown }).cause;
  }
  return undefined;
}
