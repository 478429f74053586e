/**
 * Gap 1 of @sigstore/verify 3.1 (SPEC §9): Rekor v2 records a DSSE entry (dsse 0.0.2) with the hash
 * of the PAE, while the verifier compares it with the hash of the payload only, so valid v2 entries
 * are rejected. The entity's signature content is wrapped to accept either digest, and only when the
 * bundle carries a dsse 0.0.2 entry. SHA-256(PAE) commits to the payload type and the payload, so it
 * binds the entry to the envelope at least as tightly as SHA-256(payload).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Bundle } from '@sigstore/bundle';
import type { SignedEntity } from '@sigstore/verify';
import { pae } from '../../attest/dsse.js';

type SignatureContent = SignedEntity['signature'];

/**
 * The entity with some of its signature checks replaced (the rest delegate to the original):
 * how this verifier covers the gaps of @sigstore/verify without forking it.
 */
export function withSignature(entity: SignedEntity, over: Partial<Pick<SignatureContent, 'compareDigest' | 'verifySignature'>>): SignedEntity {
  const inner = entity.signature;
  return {
    ...entity,
    signature: {
      get signature() { return inner.signature; },
      compareSignature: (s: Buffer) => inner.compareSignature(s),
      compareDigest: over.compareDigest ?? ((d: Buffer) => inner.compareDigest(d)),
      verifySignature: over.verifySignature ?? ((k) => inner.verifySignature(k)),
    },
  };
}

export function isRekorV2Dsse(e: { kindVersion?: { kind: string; version: string } }): boolean {
  return e.kindVersion?.kind === 'dsse' && e.kindVersion.version === '0.0.2';
}

export function acceptRekorV2DsseDigest(entity: SignedEntity, bundle: Bundle): SignedEntity {
  if (bundle.content.$case !== 'dsseEnvelope' || !entity.tlogEntries.some(isRekorV2Dsse)) return entity;
  const env = bundle.content.dsseEnvelope;
  const paeDigest = createHash('sha256').update(pae(env.payloadType, env.payload)).digest();
  return withSignature(entity, {
    compareDigest: (d: Buffer) => entity.signature.compareDigest(d) || (d.length === paeDigest.length && timingSafeEqual(d, paeDigest)),
  });
}
