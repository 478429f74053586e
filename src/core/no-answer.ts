/**
 * Why a request got no answer, said so a user can act on it. fetch's own error is a TypeError
 * saying only "fetch failed": the reason (ECONNREFUSED, a TLS failure, a timeout) is in its causes.
 */
import { boundText } from './errors.js';

/** What OpenSSL says when a TLS handshake gets a plain-HTTP answer: words a user cannot act on. */
const PLAIN_HTTP_ANSWER = /wrong version number|packet length too long|http request/i;
/** Causes followed at most (a chain is a few links; a cycle must not hang the report). */
const MAX_CAUSES = 8;
/** The reason's length at most: a peer's words (a TLS alert, a host name) end up in it. */
const MAX_REASON_CHARS = 300;

function causes(e: unknown): { code?: unknown; message?: unknown; name?: unknown }[] {
  const out: { code?: unknown; message?: unknown; name?: unknown }[] = [];
  for (let c: unknown = e; c && typeof c === 'object' && out.length < MAX_CAUSES; c = (c as { cause?: unknown }).cause) out.push(c as { code?: unknown });
  return out;
}

/** True when `url` is https and the failure is TLS meeting a server that answers in plain HTTP. */
export function spokeTlsToPlainHttp(url: URL, e: unknown): boolean {
  return url.protocol === 'https:' && causes(e).some((c) => PLAIN_HTTP_ANSWER.test(String(c.message ?? '')));
}

/** An error code as Node and undici give them (ECONNREFUSED, ERR_SSL_…, UND_ERR_…). */
const CODE = /^[A-Z][A-Z0-9_]{1,63}$/;
/** An error's name as JavaScript gives them (TypeError, TimeoutError). */
const NAME = /^[A-Za-z]{1,40}$/;

/**
 * The innermost cause that has a code, by its code only, with the address a system error names
 * (`ECONNREFUSED 127.0.0.1:8443`); without one, the error's name only. Never an error's message:
 * fetch's TypeError for a header value it refuses quotes the whole value, an Authorization header's
 * token with it, and a URL it refuses its credentials.
 */
export function noAnswerReason(e: unknown): string {
  const chain = causes(e) as { code?: unknown; name?: unknown; syscall?: unknown; address?: unknown; port?: unknown }[];
  const coded = [...chain].reverse().find((c) => typeof c.code === 'string' && CODE.test(c.code));
  if (coded) {
    const at = typeof coded.syscall === 'string' && typeof coded.address === 'string' ? ` ${coded.address}${typeof coded.port === 'number' ? `:${coded.port}` : ''}` : '';
    return boundText(`${coded.code as string}${at}`, MAX_REASON_CHARS);
  }
  const name = chain.map((c) => c.name).reverse().find((n): n is string => typeof n === 'string' && NAME.test(n));
  return `${name ?? 'Error'}: the request could not be made`;
}
