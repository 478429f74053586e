/**
 * Signed trust-store updates (SPEC §5: "updates are signed and their version must increase").
 *
 * A signature is Ed25519 over the JCS (RFC 8785) bytes of the store with `signatures` removed,
 * listed as `{keyid, sig}` (sig base64) in `signatures[]` — so any number of updaters can sign the
 * same document independently and in any order. An update is accepted when, judged by the CURRENT
 * store (never by the candidate, which could name its own updaters):
 *  - next.version > current.version, else TRUST_STORE_ROLLBACK (an old store is never replayed);
 *  - next.id equals current.id, else TRUST_STORE_INVALID at /id (a different store, not an update);
 *  - enough distinct keys of role `trust-store-updaters`, valid now and not revoked, signed it:
 *    k of `thresholds['trust-store-updaters']` when that group exists (signers must be members),
 *    else k = 1. No counting signature at all → TRUST_STORE_UNSIGNED; some but fewer than k →
 *    THRESHOLD_NOT_MET. Signatures by other keys, bad signatures and repeats do not count.
 */
import { canonicalBytes } from '../core/jcs.js';
import { CtError } from '../core/errors.js';
import { keyIdOf, publicKeyFrom } from './keyid.js';
import { signBytes, verifyBytes, keyAlgorithmOf } from './keys.js';
import { isKeyRevoked, keyInRole, keyValidity, keysInRole } from './store.js';
import { evaluateThreshold, type IgnoredReason } from './thresholds.js';
import type { TrustStore } from './types.js';
import { validateTrustStore } from './validate.js';
import type { KeyObject } from 'node:crypto';

export const UPDATER_ROLE = 'trust-store-updaters';

/** The bytes every trust-store signature covers: JCS of the store without `signatures`. */
export function trustStoreSigningBytes(store: TrustStore): Buffer {
  const { signatures: _ignored, ...unsigned } = store;
  return canonicalBytes(unsigned);
}

/**
 * Returns a copy of `store` with this key's signature added (replacing an earlier one by the same
 * key). Signing only: it does not check that the key is an updater — verification decides that.
 */
export function signTrustStore(store: TrustStore, privateKey: KeyObject): TrustStore {
  if (keyAlgorithmOf(privateKey) !== 'ed25519') {
    throw new CtError('KEY_INVALID', 'trust stores are signed with Ed25519 keys', { algorithm: privateKey.asymmetricKeyType });
  }
  const keyid = keyIdOf(privateKey);
  const sig = signBytes(privateKey, trustStoreSigningBytes(store)).toString('base64');
  const others = (store.signatures ?? []).filter((s) => s.keyid !== keyid);
  return { ...store, signatures: [...others, { keyid, sig }] };
}

export type SignatureRejection = IgnoredReason | 'not-an-updater' | 'bad-signature';

export interface UpdateVerification {
  fromVersion: number;
  toVersion: number;
  k: number;
  /** Distinct updater key ids whose signatures counted. */
  signers: string[];
  rejected: { keyid: string; reason: SignatureRejection }[];
}

/** Key ids of `next.signatures` that are cryptographically valid signatures by keys of current's updater role. */
function verifiedUpdaterSignatures(current: TrustStore, next: TrustStore, rejected: UpdateVerification['rejected']): string[] {
  const bytes = trustStoreSigningBytes(next);
  const seen = new Set<string>();
  const ok: string[] = [];
  for (const { keyid, sig } of next.signatures ?? []) {
    if (seen.has(keyid)) {
      rejected.push({ keyid, reason: 'duplicate' });
      continue;
    }
    const entry = keyInRole(current, UPDATER_ROLE, keyid);
    if (!entry) {
      rejected.push({ keyid, reason: 'not-an-updater' });
      continue;
    }
    if (!verifyBytes(publicKeyFrom(entry.publicKey), bytes, Buffer.from(sig, 'base64'))) {
      rejected.push({ keyid, reason: 'bad-signature' });
      continue;
    }
    seen.add(keyid);
    ok.push(keyid);
  }
  return ok;
}

/** Checks that `next` may replace `current` (see the header); returns who signed it. */
export function verifyTrustStoreUpdate(current: TrustStore, next: TrustStore, now: Date = new Date()): UpdateVerification {
  validateTrustStore(current, 'current trust store');
  validateTrustStore(next, 'next trust store');
  if (!(next.version > current.version)) {
    throw new CtError('TRUST_STORE_ROLLBACK', `next trust store version ${next.version} is not greater than the current ${current.version}`, {
      path: '/version',
      current: current.version,
      next: next.version,
    });
  }
  if (next.id !== current.id) {
    throw new CtError('TRUST_STORE_INVALID', `next trust store id ${JSON.stringify(next.id)} differs from the current ${JSON.stringify(current.id)}`, {
      path: '/id',
      issues: [{ path: '/id', message: 'differs from the current store' }],
    });
  }
  const rejected: UpdateVerification['rejected'] = [];
  const verified = verifiedUpdaterSignatures(current, next, rejected);
  const base = { fromVersion: current.version, toVersion: next.version };

  let k = 1;
  let signers: string[];
  if (current.thresholds?.[UPDATER_ROLE]) {
    const r = evaluateThreshold(current, UPDATER_ROLE, verified, now);
    k = r.k;
    signers = r.counted;
    rejected.push(...r.ignored.map((i) => ({ keyid: i.keyId, reason: i.reason })));
  } else {
    signers = [];
    for (const id of verified) {
      const entry = keyInRole(current, UPDATER_ROLE, id)!;
      const validity = keyValidity(entry, now);
      if (isKeyRevoked(current, id)) rejected.push({ keyid: id, reason: 'revoked' });
      else if (validity !== 'valid') rejected.push({ keyid: id, reason: validity });
      else signers.push(id);
    }
  }
  const details = { ...base, k, signers, rejected };
  if (signers.length === 0) {
    const why = keysInRole(current, UPDATER_ROLE).length === 0 ? `the current store names no ${UPDATER_ROLE}` : `no valid signature by a current ${UPDATER_ROLE} key`;
    throw new CtError('TRUST_STORE_UNSIGNED', `next trust store is not signed: ${why}`, details);
  }
  if (signers.length < k) {
    throw new CtError('THRESHOLD_NOT_MET', `next trust store has ${signers.length} of the ${k} required ${UPDATER_ROLE} signatures`, details);
  }
  return details;
}
