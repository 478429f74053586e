/**
 * Signs in-toto statements into DSSE envelopes with the standard PAE (SPEC §4). The signature
 * covers the DECODED payload bytes; `keyid` is `sha256:` + hex SHA-256 of the signer's SPKI DER.
 */
import { createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { INTOTO_PAYLOAD_TYPE, pae, type DsseEnvelope } from './dsse.js';
import { keyIdOf } from '../trust/keyid.js';
import { assertStatement, type Statement } from './statement.js';

/** Signs arbitrary payload bytes into an envelope (Ed25519; null digest as Ed25519 requires). */
export function signPayload(payloadType: string, payload: Uint8Array, key: KeyObject): DsseEnvelope {
  if (key.type !== 'private') throw new CtError('KEY_INVALID', 'signing needs a private key', {});
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new CtError('KEY_INVALID', `signing key is ${key.asymmetricKeyType}, Ed25519 expected (CT-SIG-01)`, { keyType: key.asymmetricKeyType });
  }
  const sig = cryptoSign(null, pae(payloadType, payload), key);
  return {
    payloadType,
    payload: Buffer.from(payload).toString('base64'),
    signatures: [{ keyid: keyIdOf(createPublicKey(key)), sig: sig.toString('base64') }],
  };
}

/** The statement is serialised as JCS-free compact JSON: DSSE signs bytes, not a canonical form. */
export function signStatement(statement: Statement, key: KeyObject): DsseEnvelope {
  assertStatement(statement, 'statement');
  return signPayload(INTOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement), 'utf8'), key);
}

/** Adds a further signature (another key) to an envelope over the same payload. */
export function addSignature(env: DsseEnvelope, key: KeyObject): DsseEnvelope {
  const extra = signPayload(env.payloadType, Buffer.from(env.payload, 'base64'), key);
  return { ...env, signatures: [...env.signatures, ...extra.signatures] };
}
