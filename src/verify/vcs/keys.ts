/**
 * Key stage (SPEC §4 order: UNKNOWN_KEY, then revocation, EXPIRED_KEY, KEY_NOT_YET_VALID) and
 * the parsed-key cache. Parsing an SPKI key costs about as much as one Ed25519 verification, so
 * keys are parsed once per process and looked up by their base64 text.
 */
import type { KeyObject } from 'node:crypto';
import { CtError } from '../../core/errors.js';
import { publicKeyFrom } from '../../trust/keyid.js';
import { findKey, isKeyRevoked, keyValidity, validityCode } from '../../trust/store.js';
import type { TrustStore, TrustRole } from '../../trust/types.js';
import type { ParsedAttestation } from './parse.js';

const MAX_CACHED_KEYS = 1024;
const keyCache = new Map<string, KeyObject>();

/** The KeyObject of a base64 SPKI (or PEM) public key, parsed once. */
export function cachedPublicKey(material: string, where: string): KeyObject {
  let k = keyCache.get(material);
  if (!k) {
    k = publicKeyFrom(material, where);
    if (keyCache.size >= MAX_CACHED_KEYS) keyCache.delete(keyCache.keys().next().value as string);
    keyCache.set(material, k);
  }
  return k;
}

export interface ResolvedSigner {
  keyId: string;
  roles: TrustRole[];
  publicKey: KeyObject;
}

/** Resolves every signature's key of every attestation, in bundle order; throws on the first failure. */
export function resolveKeys(atts: ParsedAttestation[], store: TrustStore, now: Date): ResolvedSigner[][] {
  return atts.map((a) =>
    a.envelope.signatures.map((s, j) => {
      const where = `$.attestations[${a.index}].signatures[${j}]`;
      const hit = findKey(store, s.keyid);
      if (!hit) throw new CtError('UNKNOWN_KEY', `${where}: key ${s.keyid} is not in trust store ${store.id ?? ''}`.trim(), { where, keyId: s.keyid });
      if (isKeyRevoked(store, s.keyid)) throw new CtError('REVOKED_KEY', `${where}: key ${s.keyid} is revoked`, { where, keyId: s.keyid });
      const v = keyValidity(hit.key, now);
      if (v !== 'valid') {
        const when = v === 'expired' ? `expired at ${hit.key.validUntil}` : `valid only from ${hit.key.validFrom}`;
        throw new CtError(validityCode(v), `${where}: key ${s.keyid} ${when}`, { where, keyId: s.keyid, validFrom: hit.key.validFrom, validUntil: hit.key.validUntil });
      }
      return { keyId: s.keyid, roles: hit.roles, publicKey: cachedPublicKey(hit.key.publicKey, `trust store key ${s.keyid}`) };
    }),
  );
}
