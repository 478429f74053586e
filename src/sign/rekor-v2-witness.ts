/**
 * Logging in Rekor v2 as it is deployed (SPEC §9): one `hashedRekordRequestV002` per signature. A
 * DSSE envelope is logged by the hash of its PAE (SHA-256 for P-256 keys, SHA-384 for P-384) with its
 * one signature; a message signature by its message digest. The verifier is the signer's certificate
 * or, with a key, its public key (@sigstore/sign 4.1 sends a `dsse` request Rekor v2 does not have,
 * and calls every key a P-256 certificate).
 */
import { createPublicKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { SignatureBundle, VerificationMaterial, Witness } from '@sigstore/sign';
import { RekorV2 } from '@sigstore/sign/dist/external/rekor-v2.js';
import { CtError } from '../core/errors.js';
import { keyProfile, paeDigest } from '../verify/sigstore/rekor-v2-entry.js';

export interface RekorV2WitnessOptions {
  rekorBaseURL: string;
  timeout: number;
  retry: { retries: number; factor: number; minTimeout: number; maxTimeout: number };
}

function verifierOf(publicKeyPem: string): { key: KeyObject; verifier: { $case: 'x509Certificate'; x509Certificate: { rawBytes: Buffer } } | { $case: 'publicKey'; publicKey: { rawBytes: Buffer } } } {
  if (publicKeyPem.includes('BEGIN CERTIFICATE')) {
    const cert = new X509Certificate(publicKeyPem);
    return { key: cert.publicKey, verifier: { $case: 'x509Certificate', x509Certificate: { rawBytes: cert.raw } } };
  }
  const key = createPublicKey(publicKeyPem);
  return { key, verifier: { $case: 'publicKey', publicKey: { rawBytes: key.export({ type: 'spki', format: 'der' }) } } };
}

export class RekorV2Witness implements Witness {
  private readonly rekor: RekorV2;

  constructor(private readonly o: RekorV2WitnessOptions) {
    this.rekor = new RekorV2({ baseURL: o.rekorBaseURL, timeout: o.timeout, retry: o.retry });
  }

  async testify(content: SignatureBundle, publicKeyPem: string): Promise<VerificationMaterial> {
    const { key, verifier } = verifierOf(publicKeyPem);
    const profile = keyProfile(key);
    if (!profile) {
      const got = [key.asymmetricKeyType, key.asymmetricKeyDetails?.namedCurve].filter(Boolean).join(' ');
      throw new CtError('KEY_INVALID', `Rekor v2 logs a signature by the digest it signs: an ECDSA P-256 or P-384 key is needed (got ${got})`, { where: 'key' });
    }
    let digest: Buffer;
    let signature: Buffer;
    if (content.$case === 'dsseEnvelope') {
      const env = content.dsseEnvelope;
      if (env.signatures.length !== 1) throw new CtError('USAGE', `Rekor v2 logs one signature per DSSE envelope; this one has ${env.signatures.length}`, { where: 'dsseEnvelope' });
      digest = paeDigest(env.payloadType, env.payload, profile);
      signature = env.signatures[0].sig;
    } else {
      digest = content.messageSignature.messageDigest.digest;
      signature = content.messageSignature.signature;
    }
    try {
      const entry = await this.rekor.createEntry({
        spec: { $case: 'hashedRekordRequestV002', hashedRekordRequestV002: { digest, signature: { content: signature, verifier: { keyDetails: profile.keyDetails, verifier } } } },
      });
      if (!entry.logId || !entry.kindVersion) throw new Error('the log answered an entry without logId or kindVersion');
      return { tlogEntries: [{ ...entry, logId: entry.logId, kindVersion: entry.kindVersion }] };
    } catch (e) {
      if (e instanceof CtError) throw e;
      const err = e as { statusCode?: number; message?: string };
      throw new CtError('NETWORK_ERROR', `Rekor v2 ${this.o.rekorBaseURL}: ${err.message ?? String(e)}${err.statusCode ? ` (HTTP ${err.statusCode})` : ''}`, { where: 'rekor', status: err.statusCode }, { cause: e });
    }
  }
}
