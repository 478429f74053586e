import { CtError } from '../core/errors.js';

/**
 * A parsed image reference `host[:port]/repo[:tag][@sha256:…]`. The registry host is always
 * explicit: credentials are bound to the host a user typed (SPEC §3), so there is no implicit
 * default registry to send them to.
 */
export interface ImageReference {
  /** Host as written, with port when given: `registry.example:5000`, `[::1]:5000`. */
  registry: string;
  /** Host name or IP literal without brackets or port; what the network guard checks. */
  hostname: string;
  port?: number;
  /** Where the API is served (`docker.io` is served by `registry-1.docker.io`). */
  apiHost: string;
  repository: string;
  tag?: string;
  digest?: string;
}

// distribution/reference grammar, path components only (the host is parsed separately).
const COMPONENT_RE = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;
const HOSTNAME_RE = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function bad(ref: string, why: string): CtError {
  return new CtError('REFERENCE_INVALID', `image reference ${JSON.stringify(ref.slice(0, 200))}: ${why}`, { reference: ref.slice(0, 200) });
}

export function parseReference(ref: string): ImageReference {
  if (typeof ref !== 'string' || ref.length === 0) throw bad(String(ref), 'empty');
  if (ref.length > 1024) throw bad(ref, 'longer than 1024 characters');
  // eslint-disable-next-line no-control-regex
  if (/[\s\u0000-\u001f]/.test(ref)) throw bad(ref, 'contains whitespace or control characters');
  if (ref.includes('://')) throw bad(ref, 'write host/repo[:tag], without a URL scheme');

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST_RE.test(digest)) throw bad(ref, `digest ${JSON.stringify(digest.slice(0, 80))} is not sha256: + 64 lowercase hex`);
  }
  const slash = rest.indexOf('/');
  if (slash <= 0) throw bad(ref, 'missing registry host: write host[:port]/repository[:tag]');
  const registry = rest.slice(0, slash);
  let path = rest.slice(slash + 1);
  const { hostname, port } = parseHost(ref, registry);

  let tag: string | undefined;
  const colon = path.lastIndexOf(':');
  if (colon >= 0) {
    tag = path.slice(colon + 1);
    path = path.slice(0, colon);
    if (!TAG_RE.test(tag)) throw bad(ref, `tag ${JSON.stringify(tag.slice(0, 80))} is not valid (letters, digits, _ . -, at most 128, not starting with . or -)`);
  }
  if (path.length === 0) throw bad(ref, 'missing repository name');
  if (path.length > 255) throw bad(ref, 'repository name longer than 255 characters');
  for (const c of path.split('/')) {
    if (!COMPONENT_RE.test(c)) throw bad(ref, `repository component ${JSON.stringify(c.slice(0, 80))} is not valid (lowercase letters, digits, separators . _ __ -)`);
  }
  let apiHost = registry;
  if (hostname === 'docker.io' && port === undefined) {
    apiHost = 'registry-1.docker.io';
    if (!path.includes('/')) path = `library/${path}`;
  }
  return { registry, hostname, port, apiHost, repository: path, tag, digest };
}

function parseHost(ref: string, registry: string): { hostname: string; port?: number } {
  let hostname: string;
  let portText: string | undefined;
  if (registry.startsWith('[')) {
    const close = registry.indexOf(']');
    if (close < 0) throw bad(ref, 'unterminated IPv6 literal in host');
    hostname = registry.slice(1, close);
    const after = registry.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) throw bad(ref, 'garbage after IPv6 literal');
    portText = after ? after.slice(1) : undefined;
    if (!/^[0-9a-fA-F:.]+$/.test(hostname)) throw bad(ref, `host ${JSON.stringify(hostname)} is not an IPv6 address`);
  } else {
    const c = registry.indexOf(':');
    hostname = c >= 0 ? registry.slice(0, c) : registry;
    portText = c >= 0 ? registry.slice(c + 1) : undefined;
    if (!HOSTNAME_RE.test(hostname)) throw bad(ref, `host ${JSON.stringify(hostname.slice(0, 80))} is not a valid host name`);
    // A bare first component like `library` is a repository, not a host: demand an explicit host.
    if (!hostname.includes('.') && hostname !== 'localhost' && portText === undefined) {
      throw bad(ref, `first component ${JSON.stringify(hostname)} is not a registry host: write host[:port]/repository[:tag]`);
    }
  }
  let port: number | undefined;
  if (portText !== undefined) {
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw bad(ref, `port ${JSON.stringify(portText)} is not 1-65535`);
    port = Number(portText);
  }
  return { hostname: hostname.toLowerCase(), port };
}

export function formatReference(r: ImageReference): string {
  return `${r.registry}/${r.repository}${r.tag ? `:${r.tag}` : ''}${r.digest ? `@${r.digest}` : ''}`;
}
