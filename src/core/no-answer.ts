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

/** The innermost cause as `CODE message` (or the error's name and message when it has none), bounded. */
export function noAnswerReason(e: unknown): string {
  const chain = causes(e);
  const inner = chain[chain.length - 1] ?? {};
  const code = typeof inner.code === 'string' ? inner.code : typeof inner.name === 'string' ? inner.name : '';
  const message = typeof inner.message === 'string' ? inner.message : String(e);
  return boundText(`${code} ${message}`.trim().replace(/\s+/g, ' '), MAX_REASON_CHARS);
}
