/**
 * Signing with a key instead of a Fulcio certificate: ECDSA P-256 (SHA-256), P-384 (SHA-384) or Ed25519, shaped as
 * @sigstore/sign's `Signer` so the same bundle builders and witnesses (Rekor, TSA) apply. The bundle
 * carries only a key hint: verifiers are given the public key out of band (`--key`).
 */
import { createPrivateKey, createPublicKey, sign, type KeyObject } from 'node:crypto';
import type { Signer, Signature } from '@sigstore/sign';
import { CtError } from '../core/errors.js';
import { keyIdOf } from '../trust/keyid.js';

export class KeySigner implements Signer {
  readonly publicKeyPem: string;
  readonly hint: string;
  readonly algorithm: 'ecdsa-p256' | 'ecdsa-p384' | 'ed25519';

  constructor(private readonly key: KeyObject) {
    if (key.type !== 'private') throw new CtError('KEY_INVALID', 'signing key: a private key is needed', { where: 'key' });
    if (key.asymmetricKeyType === 'ed25519') this.algorithm = 'ed25519';
    else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') this.algorithm = 'ecdsa-p256';
    else if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1') this.algorithm = 'ecdsa-p384';
    else throw new CtError('KEY_INVALID', `signing key: ${key.asymmetricKeyType} ${key.asymmetricKeyDetails?.namedCurve ?? ''} not supported (ECDSA P-256 or P-384, or Ed25519)`, { where: 'key' });
    this.publicKeyPem = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
    this.hint = keyIdOf(key);
  }

  static fromPem(pem: string | Buffer, passphrase?: string): KeySigner {
    try {
      return new KeySigner(createPrivateKey({ key: pem, format: 'pem', passphrase }));
    } catch (e) {
      if (e instanceof CtError) throw e;
      throw new CtError('KEY_INVALID', `signing key: not a PEM private key (${(e as Error).message})`, { where: 'key' }, { cause: e });
    }
  }

  async sign(data: Buffer): Promise<Signature> {
    // ECDSA with the hash that goes with the curve (what Rekor v2 records as the key details).
    const signature = sign(this.algorithm === 'ed25519' ? null : this.algorithm === 'ecdsa-p384' ? 'sha384' : 'sha256', data, this.key);
    return { signature, key: { $case: 'publicKey', publicKey: this.publicKeyPem, hint: this.hint } };
  }
}
