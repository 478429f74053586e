import type { Request } from 'express';
import type { ServerContext } from '../context.js';

/**
 * A DNS name or IPv4 address, or a bracketed IPv6 address, and an optional port (1–65535, checked
 * in validHost). Labels may hold `_`: Docker Compose service names (`ct_server:8080`) do.
 */
const HOST_RE = /^(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::([1-9][0-9]{0,4}))?$/;
const MAX_HOST_LENGTH = 255;

function validHost(host: string): boolean {
  const m = host.length <= MAX_HOST_LENGTH ? HOST_RE.exec(host) : null;
  return m !== null && (m[1] === undefined || Number(m[1]) <= 65_535);
}

/**
 * This server's origin as URLs it hands out must name it (the OpenID Connect redirect URI, a
 * one-time sign-in link): `publicUrl`, else this request's own Host, taken only when it is a
 * syntactically valid, bounded `host[:port]`. A Host header is the client's to write: unchecked,
 * `evil.example/?` would make `http://evil.example/?/auth/link?token=…`, a link that hands its
 * token to another site, and a ~15 KB one would be stored with every login started.
 * Undefined: no usable Host.
 */
export function requestOrigin(ctx: ServerContext, req: Request): string | undefined {
  if (ctx.config.publicUrl) return ctx.config.publicUrl.replace(/\/$/, '');
  const host = req.get('host') ?? '';
  return validHost(host) ? `${req.protocol}://${host}` : undefined;
}

/** Longer than any origin this server has (scheme, a 255-character host, a port): not ours. */
const MAX_ORIGIN_LENGTH = 300;

/**
 * Whether a browser sent this request from a page of this server, for the state-changing requests
 * a page of another site could make a browser send without any secret of ours (a form posted
 * cross-site carries no X-CSRF-Token, but needs none to sign the browser in with the attacker's
 * own link: login CSRF). As Go's net/http CrossOriginProtection: `Sec-Fetch-Site` when the browser
 * sends it, only `same-origin` (`same-site` is a sibling subdomain or another port, not this
 * server); else `Origin`, which must be this server's (`null`, sent by sandboxed or
 * privacy-redirected pages, is not). A request with neither came from no browser page (curl, a
 * script), which no other site can make anyone send.
 *
 * Browsers without Fetch Metadata (Safari before 16.4, a proxy that strips it, any http:// name
 * but localhost) are judged by the Origin alone, so it is compared as an origin, not as a string:
 * with `publicUrl`, against its origin (`HTTPS://CT.example:443/ct/` is `https://ct.example`);
 * without, its host[:port] against the request's validated Host, as Go does: behind a proxy that
 * terminates TLS this server sees http while the browser's Origin says https, and the scheme
 * would refuse every legitimate post (set publicUrl there, and the scheme counts too).
 */
export function sameOriginRequest(ctx: ServerContext, req: Request): boolean {
  const site = req.get('sec-fetch-site');
  if (site !== undefined) return site === 'same-origin';
  const origin = req.get('origin');
  if (origin === undefined) return true;
  const from = origin.length <= MAX_ORIGIN_LENGTH ? parsedUrl(origin) : undefined;
  if (!from || (from.protocol !== 'https:' && from.protocol !== 'http:')) return false;
  if (ctx.config.publicUrl) return from.origin === parsedUrl(ctx.config.publicUrl)?.origin;
  const host = req.get('host') ?? '';
  // Read with the Origin's scheme, so that its default port is dropped as it is from the Origin.
  return validHost(host) && from.host === parsedUrl(`${from.protocol}//${host}`)?.host;
}

function parsedUrl(s: string): URL | undefined {
  try {
    return new URL(s);
  } catch {
    return undefined;
  }
}
