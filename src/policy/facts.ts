/**
 * Verified facts the engine reads from evidence: which signers a policy's specs accept, the
 * source repositories that verified provenance (or a verified keyless certificate) names, and
 * values inside predicates. Nothing here reads what the bundle says about itself.
 */
import type { VerifiedAttestation, VerifiedSigner } from '../verify/evidence.js';
import type { PredicateCondition, SignerSpec } from './types.js';

export function signerMatches(spec: SignerSpec, s: VerifiedSigner): boolean {
  if (spec.keyId !== undefined) return s.kind === 'key' && s.keyId === spec.keyId;
  if (spec.role !== undefined) return s.kind === 'key' && !!s.roles?.includes(spec.role);
  if (s.kind !== 'keyless' || s.issuer !== spec.issuer || !spec.subject!.test(s.subject)) return false;
  for (const [name, m] of spec.claims ?? []) if (!m.test(s.claims?.[name])) return false;
  return true;
}

export function signedByAny(att: VerifiedAttestation, specs: readonly SignerSpec[]): boolean {
  for (const s of att.signers) for (const spec of specs) if (signerMatches(spec, s)) return true;
  return false;
}

/** A stable identity for counting distinct signers (thresholds) and for messages. */
export function signerIdentity(s: VerifiedSigner): string {
  return s.kind === 'key' ? `key:${s.keyId ?? '?'}` : `keyless:${s.issuer ?? '?'}|${s.subject ?? '?'}`;
}

/** How a signer shows in a rejection: the key id, or the certificate's actual SAN and issuer (SPEC §3). */
export function describeSigner(s: VerifiedSigner): Record<string, unknown> {
  return s.kind === 'key'
    ? { kind: 'key', keyId: s.keyId, roles: s.roles }
    : { kind: 'keyless', issuer: bound(s.issuer), subject: bound(s.subject), sourceRepositoryRef: bound(s.claims?.sourceRepositoryRef) };
}

export function bound(v: unknown, n = 256): unknown {
  if (typeof v === 'string') return v.length > n ? `${v.slice(0, n)}…` : v;
  return v;
}

const SLSA_V1 = 'https://slsa.dev/provenance/v1';
const SLSA_V02 = 'https://slsa.dev/provenance/v0.2';

/** `git+https://github.com/acme/app@refs/heads/main` → `https://github.com/acme/app`. */
export function normaliseRepo(uri: string): string {
  let u = uri.startsWith('git+') ? uri.slice(4) : uri;
  const at = u.indexOf('@', u.indexOf('://') + 3);
  if (at > 0) u = u.slice(0, at);
  if (u.endsWith('.git')) u = u.slice(0, -4);
  return u;
}

/** Source repositories named by the given (already accepted) attestations. */
export function sourceRepositories(atts: readonly VerifiedAttestation[]): Set<string> {
  const out = new Set<string>();
  const add = (v: unknown) => {
    if (typeof v === 'string' && v.length > 0 && v.length <= 2048) out.add(normaliseRepo(v));
  };
  for (const a of atts) {
    for (const s of a.signers) if (s.kind === 'keyless') add(s.claims?.sourceRepositoryUri);
    const p = a.predicate as Record<string, any> | null; // eslint-disable-line @typescript-eslint/no-explicit-any
    if (!p || typeof p !== 'object') continue;
    if (a.predicateType === SLSA_V1) {
      const ext = p.buildDefinition?.externalParameters;
      add(ext?.workflow?.repository);
      add(ext?.source?.uri);
      const deps = p.buildDefinition?.resolvedDependencies;
      if (Array.isArray(deps) && deps.length > 0) add(deps[0]?.uri);
    } else if (a.predicateType === SLSA_V02) {
      add(p.invocation?.configSource?.uri);
    }
  }
  return out;
}

const MAX_PATH_VALUES = 256;

/** Every value at `path` in `root` (`*` fans out over arrays and objects), bounded. */
export function valuesAt(root: unknown, path: readonly string[]): unknown[] {
  let cur: unknown[] = [root];
  for (const seg of path) {
    const next: unknown[] = [];
    for (const v of cur) {
      if (v === null || typeof v !== 'object') continue;
      if (seg === '*') {
        // One at a time up to the bound: spreading an array of ~130,000 values overflowed the stack.
        const all = Array.isArray(v) ? v : Object.values(v);
        for (let i = 0; i < all.length && next.length <= MAX_PATH_VALUES; i++) next.push(all[i]);
      }
      else if (Array.isArray(v)) {
        if (/^\d+$/.test(seg)) next.push(v[Number(seg)]);
      } else if (Object.prototype.hasOwnProperty.call(v, seg)) next.push((v as Record<string, unknown>)[seg]);
      if (next.length > MAX_PATH_VALUES) break;
    }
    cur = next.slice(0, MAX_PATH_VALUES);
  }
  return cur.filter((v) => v !== undefined);
}

/** A condition holds when some value at its path passes (or, for `exists`, when there is or is not one). */
export function conditionHolds(c: PredicateCondition, predicate: unknown): boolean {
  const values = valuesAt(predicate, c.path);
  const t = c.test;
  if (t.kind === 'exists') return t.value === values.length > 0;
  if (t.kind === 'equals') return values.some((v) => v === t.value);
  return values.some((v) => typeof v === 'string' && t.matcher.test(v));
}
