/**
 * Images the admission webhooks let through unverified (`--exempt-image`, `admission.exemptImages`):
 * what a team runs but cannot sign itself — a service mesh's sidecar, a cloud provider's agent —
 * named by pattern as policy-controller's `glob` and Kyverno's `imageReferences` do, so that
 * adopting the webhook does not mean signing the world first.
 *
 * A pattern names `registry/repository`, as the kubelet completes an image name (image-name.ts:
 * `istio/proxyv2` is `docker.io/istio/proxyv2`); the tag or digest is not part of it. `*` stands for
 * any characters within one path component, a last component `**` for any number of components.
 * The registry is always literal: a wildcard there would exempt whatever registry an attacker
 * names, and exempting everything is switching the webhook off (remove the namespace label).
 * Patterns compile to anchored expressions built from escaped literals and `[^/]*`, so matching is
 * linear in the image name. Hand-written: a glob library matches file paths (dot files, braces,
 * extglobs), not this one rule.
 */
import { CtError } from '../core/errors.js';
import { parseReference } from '../oci/reference.js';
import { kubeletImageName } from './image-name.js';

export const MAX_EXEMPTIONS = 64;
const MAX_PATTERN = 255;
/** localhost, a dotted DNS name or IPv4 address, or a bracketed IPv6 address; a port may follow. */
const HOST_RE = /^(?:localhost|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+|\[[0-9a-f:]+\])(?::[0-9]{1,5})?$/;
/** A repository component of distribution's grammar, with `*` allowed anywhere in it. */
const COMPONENT_RE = /^[a-z0-9*]+(?:(?:[._]|__|-+)[a-z0-9*]+)*$|^\*+$/;

export interface Exemptions {
  /** The pattern that exempts `image` (a pod's image, as written), or undefined. */
  match(image: string): string | undefined;
  readonly patterns: readonly string[];
}

export const NO_EXEMPTIONS: Exemptions = { match: () => undefined, patterns: [] };

function compile(pattern: string, where: string): RegExp {
  const bad = (why: string) => new CtError('USAGE', `${where} ${JSON.stringify(pattern.slice(0, 80))}: ${why} (a pattern is registry/repository, e.g. docker.io/istio/proxyv2 or ghcr.io/acme/agents/*)`, {});
  if (pattern.length === 0 || pattern.length > MAX_PATTERN) throw bad(`1 to ${MAX_PATTERN} characters`);
  const [host, ...path] = pattern.split('/');
  if (pattern.includes('@') || path.some((c) => c.includes(':'))) throw bad('names a repository, without tag or digest');
  if (path.length === 0) throw bad('names a registry and a repository');
  if (!HOST_RE.test(host)) throw bad(host.includes('*') ? 'the registry cannot be a wildcard' : `"${host.slice(0, 64)}" is not a registry host (name it in full: docker.io/${pattern})`);
  const parts = path.map((c, i) => {
    if (c === '**') {
      if (i !== path.length - 1) throw bad('** only as the last component');
      if (i === 0) throw bad('every repository of a registry is the registry: allow-list it with a policy, do not exempt it');
      return '(?:/[^/]+)+';
    }
    if (!COMPONENT_RE.test(c)) throw bad(`"${c.slice(0, 64)}" is not a repository component (lower case letters, digits, . _ -, and *)`);
    return `/${c.split('*').map((s) => s.replace(/[.]/g, '\\.')).join('[^/]*')}`;
  });
  if (path.length === 1 && path[0] === '*') throw bad('every repository of a registry is the registry: allow-list it with a policy, do not exempt it');
  return new RegExp(`^${host.replace(/[.[\]]/g, (ch) => `\\${ch}`)}${parts.join('')}$`);
}

/** Parsed once at start: a bad pattern stops the server (an unnoticed typo would deny, or exempt, what was not meant). */
export function parseExemptions(patterns: readonly string[], where = '--exempt-image'): Exemptions {
  if (patterns.length === 0) return NO_EXEMPTIONS;
  if (patterns.length > MAX_EXEMPTIONS) throw new CtError('USAGE', `${where}: at most ${MAX_EXEMPTIONS} patterns, not ${patterns.length}`, {});
  const compiled = patterns.map((p) => [p, compile(p, where)] as const);
  return {
    patterns: [...patterns],
    match(image: string): string | undefined {
      let name: string;
      try {
        const ref = parseReference(kubeletImageName(image));
        name = `${ref.registry}/${ref.repository}`;
      } catch {
        return undefined; // not an image name: judged, and denied, as such
      }
      return compiled.find(([, re]) => re.test(name))?.[0];
    },
  };
}
