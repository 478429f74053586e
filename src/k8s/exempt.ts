/**
 * Images the admission webhooks let through unverified (`--exempt-image`, `admission.exemptImages`):
 * what a team runs but cannot sign itself — a service mesh's sidecar, a cloud provider's agent —
 * named by pattern as policy-controller's `glob` and Kyverno's `imageReferences` do, so that
 * adopting the webhook does not mean signing the world first.
 *
 * A pattern names `registry/repository`, as the kubelet completes an image name (image-name.ts:
 * `docker.io/istio/proxyv2`); the tag or digest is not part of it. `*` stands for any characters
 * within one path component, a last component `**` for any number of components. The registry and
 * the first repository component (the account or organisation on a shared registry) are literal:
 * a wildcard there would exempt what anyone can register (a star for the account of
 * `ghcr.io/…/proxyv2`, or `docker.io/istio` with a star after it), and a pattern covering a whole registry is switching the webhook
 * off (remove the namespace label instead).
 *
 * Only images that name their registry are exempt (`docker.io/istio/proxyv2:1.24`, not
 * `istio/proxyv2:1.24`): exempt images are not pinned, and a short name may be looked up in
 * other registries by the runtime (CRI-O's unqualified-search-registries), where anyone may
 * own it.
 *
 * Components are matched by the classic wildcard walk (each `*` remembered once: at most
 * O(name × pattern) per component, no backtracking regular expression that a crafted name could
 * make slow). Hand-written: a glob library matches file paths (dot files, braces, extglobs), not
 * this one rule.
 */
import { CtError } from '../core/errors.js';
import { parseReference } from '../oci/reference.js';
import { kubeletImageName } from './image-name.js';

export const MAX_EXEMPTIONS = 64;
const MAX_PATTERN = 255;
const MAX_STARS = 4;
/** localhost, a dotted DNS name or IPv4 address, or a bracketed IPv6 address; a port may follow. */
const HOST_RE = /^(?:localhost|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+|\[[0-9a-f:]+\])(?::([0-9]{1,5}))?$/;
/** A one-label host with a port (`kind-registry:5000`): a host to the kubelet too. */
const LABEL_PORT_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?:([0-9]{1,5})$/;
const MAX_COMPONENT = 128;
/** A repository component of distribution's grammar, with `*` allowed between its characters. */
const COMPONENT_RE = /^[a-z0-9*]+(?:(?:[._]|__|-+)[a-z0-9*]+)*$/;

export interface Exemptions {
  /** The pattern that exempts `image` (a pod's image, as written), or undefined. */
  match(image: string): string | undefined;
  readonly patterns: readonly string[];
}

export const NO_EXEMPTIONS: Exemptions = { match: () => undefined, patterns: [] };

/** `text` matches `glob` (`*`: any run of characters): the iterative walk, no backtracking past the last star. */
export function wildcardMatch(glob: string, text: string): boolean {
  let g = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (g < glob.length && glob[g] !== '*' && glob[g] === text[t]) {
      g++;
      t++;
    } else if (g < glob.length && glob[g] === '*') {
      star = g++;
      mark = t;
    } else if (star >= 0) {
      g = star + 1;
      t = ++mark;
    } else return false;
  }
  while (g < glob.length && glob[g] === '*') g++;
  return g === glob.length;
}

interface Compiled {
  host: string;
  components: string[];
  /** The last component was `**`: any number (one or more) of further components. */
  deep: boolean;
}

function compile(pattern: string, where: string): Compiled {
  const bad = (why: string) => new CtError('USAGE', `${where} ${JSON.stringify(pattern.slice(0, 80))}: ${why} (a pattern is registry/repository, e.g. docker.io/istio/proxyv2 or ghcr.io/acme/agents/*)`, {});
  if (pattern.length === 0 || pattern.length > MAX_PATTERN) throw bad(`1 to ${MAX_PATTERN} characters`);
  const [host, ...path] = pattern.split('/');
  if (path.length === 0) throw bad('names a registry and a repository');
  if (pattern.includes('@') || path.some((c) => c.includes(':'))) throw bad('names a repository, without tag or digest');
  const h = HOST_RE.exec(host) ?? LABEL_PORT_RE.exec(host);
  if (!h) throw bad(host.includes('*') ? 'the registry cannot be a wildcard' : `"${host.slice(0, 64)}" is not a registry host (name it in full: docker.io/${pattern})`);
  if (h[1] !== undefined && (Number(h[1]) < 1 || Number(h[1]) > 65535)) throw bad(`port ${h[1]} is not 1-65535`);
  // As the kubelet names images: a pattern written otherwise would never match, silently.
  if (host === 'index.docker.io') throw bad('the kubelet names Docker Hub docker.io: write docker.io/…');
  if (host === 'docker.io' && path.length === 1) throw bad(`Docker Hub's official images are docker.io/library/${path[0]}`);
  const deep = path[path.length - 1] === '**';
  const components = deep ? path.slice(0, -1) : path;
  if (host === 'docker.io' && (deep || components.length !== 2)) throw bad('Docker Hub names are account/repository, two components');
  if (components.some((c) => c === '**')) throw bad('** only as the last component');
  for (const c of components) {
    if (!COMPONENT_RE.test(c) || c.includes('**') || c.length > MAX_COMPONENT) throw bad(`"${c.slice(0, 64)}" is not a repository component (at most ${MAX_COMPONENT} lower case letters, digits, . _ -, and single *)`);
    if ((c.match(/\*/g)?.length ?? 0) > MAX_STARS) throw bad(`at most ${MAX_STARS} * in a component`);
  }
  if (components.length === 0 || components[0].includes('*')) throw bad('the first repository component (the account or organisation) cannot be a wildcard: anyone may register one that matches');
  // A wildcard before the last component stands for accounts too where a registry nests them (a
  // pull-through cache's project holds Docker Hub's accounts): only the last may have one.
  if (components.slice(0, -1).some((c) => c.includes('*'))) throw bad('* only in the last component (or a last /**)');
  return { host, components, deep };
}

function matches(c: Compiled, host: string, repository: string): boolean {
  if (host !== c.host) return false;
  const parts = repository.split('/');
  if (c.deep ? parts.length <= c.components.length : parts.length !== c.components.length) return false;
  return c.components.every((glob, i) => wildcardMatch(glob, parts[i]));
}

/** Parsed once at start: a bad pattern stops the server (an unnoticed typo would deny, or exempt, what was not meant). */
export function parseExemptions(patterns: readonly string[], where = '--exempt-image'): Exemptions {
  if (patterns.length === 0) return NO_EXEMPTIONS;
  if (patterns.length > MAX_EXEMPTIONS) throw new CtError('USAGE', `${where}: at most ${MAX_EXEMPTIONS} patterns, not ${patterns.length}`, {});
  const compiled = patterns.map((p) => [p, compile(p, where)] as const);
  return {
    patterns: [...patterns],
    match(image: string): string | undefined {
      // A name without its registry is not exempt (the runtime may search other registries for it).
      if (kubeletImageName(image) !== image) return undefined;
      let ref;
      try {
        ref = parseReference(image);
      } catch {
        return undefined; // not an image name: judged, and denied, as such
      }
      return compiled.find(([, c]) => matches(c, ref.registry, ref.repository))?.[0];
    },
  };
}
