/**
 * The keyless identities a policy set trusts: every `issuer` + `subject` signer its policies name
 * (a policy's signers, an attestation requirement's, a threshold's). The trust store lists the keys
 * whose signatures count; for Sigstore certificates this is that list. Where a bundle is verified
 * beside a policy set (deploy server, hosts, admission, `ct policy explain`, promotion), a Sigstore
 * attestation counts when its certificate's identity is one of these — matched exactly as the
 * policies' `signers` rule matches it (signerMatches) — and one signed by any other identity
 * rejects the bundle (IDENTITY_MISMATCH), as a key outside the trust store does (UNKNOWN_KEY). Which
 * identity may sign for which app is then each policy's own `signers` rule.
 */
import { sha256Digest } from '../core/digest.js';
import { canonicalize } from '../core/jcs.js';
import type { KeylessTrust, TrustMaterial } from '../verify/report.js';
import type { PolicySet } from './policy-set.js';
import type { CompiledPolicy, SignerSpec } from './types.js';
import { signerMatches } from './facts.js';

function keylessSigners(p: CompiledPolicy): SignerSpec[] {
  const all = [...p.signers, ...p.attestations.flatMap((a) => a.signers ?? []), ...p.thresholds.flatMap((t) => t.signers)];
  return all.filter((s) => s.issuer !== undefined);
}

// A set is immutable: its trust is computed once, and again when one of its policies expires.
const memo = new WeakMap<PolicySet, { trust: KeylessTrust | null; from: number; until: number }>();

/**
 * The set's keyless identities; undefined when no policy in force names one. An expired policy
 * applies to nothing (evaluate.ts), so its signers are not trusted either.
 */
export function keylessTrustOf(set: PolicySet, now = Date.now()): KeylessTrust | undefined {
  const hit = memo.get(set);
  if (hit && hit.from <= now && now < hit.until) return hit.trust ?? undefined;
  const live = set.policies.filter((p) => !p.expires || now < p.expires.time);
  const by = live.map((p) => ({ p, specs: keylessSigners(p) })).filter((x) => x.specs.length > 0);
  const specs = by.flatMap((x) => x.specs);
  const trust: KeylessTrust | null = specs.length === 0
    ? null
    : {
        accepts: (s) => s.kind === 'keyless' && specs.some((spec) => signerMatches(spec, s)),
        labels: [...new Set(specs.map((s) => s.label))],
        // The sources of the policies that name them (a file's digest fixes every matcher in it).
        digest: sha256Digest(canonicalize(by.map((x) => [x.p.file, x.p.name, x.p.digest]))),
      };
  memo.set(set, { trust, from: now, until: Math.min(Infinity, ...live.map((p) => p.expires?.time ?? Infinity)) });
  return trust ?? undefined;
}

/** The trust material with the set's keyless identities (none when there is no set). */
export function withPolicyKeyless(trust: TrustMaterial, set: PolicySet | undefined | null, now = Date.now()): TrustMaterial {
  const keyless = set ? keylessTrustOf(set, now) : undefined;
  if (!keyless) {
    if (!trust.keyless) return trust;
    const { keyless: _drop, ...rest } = trust;
    return rest;
  }
  return trust.keyless === keyless ? trust : { ...trust, keyless };
}
