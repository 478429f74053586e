/**
 * The `hashedrekord` 0.0.2 entry Rekor v2 logs for one signature (SPEC §9): Rekor v2 has no `dsse`
 * type, so a DSSE envelope is logged as a hashedrekord whose digest is the hash of
 * PAE(payloadType, payload), with the hash that goes with the signing key (SHA-256 for P-256,
 * SHA-384 for P-384), the envelope's one signature, and the signer's certificate or public key with
 * its key details. The signer builds its request from this; the verifier rebuilds the expected entry
 * from the bundle with it and compares it with what the log recorded (as sigstore-go does).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { HashAlgorithm, PublicKeyDetails } from '@sigstore/protobuf-specs';
import { pae } from '../../attest/dsse.js';

export interface KeyProfile {
  keyDetails: PublicKeyDetails;
  keyDetailsName: 'PKIX_ECDSA_P256_SHA_256' | 'PKIX_ECDSA_P384_SHA_384';
  hash: 'sha256' | 'sha384';
  algorithm: HashAlgorithm;
  algorithmName: 'SHA2_256' | 'SHA2_384';
}

const P256: KeyProfile = { keyDetails: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256, keyDetailsName: 'PKIX_ECDSA_P256_SHA_256', hash: 'sha256', algorithm: HashAlgorithm.SHA2_256, algorithmName: 'SHA2_256' };
const P384: KeyProfile = { keyDetails: PublicKeyDetails.PKIX_ECDSA_P384_SHA_384, keyDetailsName: 'PKIX_ECDSA_P384_SHA_384', hash: 'sha384', algorithm: HashAlgorithm.SHA2_384, algorithmName: 'SHA2_384' };

/**
 * The signature algorithm Rekor v2 records for a key and the hash that goes with it; undefined for
 * keys a hashedrekord cannot carry a DSSE signature for (Ed25519 signs the PAE itself, not a digest).
 */
export function keyProfile(key: KeyObject): KeyProfile | undefined {
  if (key.asymmetricKeyType !== 'ec') return undefined;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  return curve === 'prime256v1' ? P256 : curve === 'secp384r1' ? P384 : undefined;
}

/** The digest a Rekor v2 entry records for a DSSE envelope: hash(PAE) with the key's hash. */
export function paeDigest(payloadType: string, payload: Buffer, profile: KeyProfile): Buffer {
  return createHash(profile.hash).update(pae(payloadType, payload)).digest();
}

export type V2Verifier = { kind: 'certificate' | 'publicKey'; der: Buffer };

/** The hashedrekord 0.0.2 body (protobuf JSON form) for one signature over `digest`. */
export function hashedRekordV002Body(digest: Buffer, signature: Buffer, verifier: V2Verifier, profile: KeyProfile): { apiVersion: string; kind: string; spec: unknown } {
  return {
    apiVersion: '0.0.2',
    kind: 'hashedrekord',
    spec: {
      hashedRekordV002: {
        data: { algorithm: profile.algorithmName, digest: digest.toString('base64') },
        signature: {
          content: signature.toString('base64'),
          verifier: { [verifier.kind === 'certificate' ? 'x509Certificate' : 'publicKey']: { rawBytes: verifier.der.toString('base64') }, keyDetails: profile.keyDetailsName },
        },
      },
    },
  };
}
