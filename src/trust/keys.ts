/**
 * Signing keys: generation, PEM encoding, loading from files and raw sign/verify.
 *
 * Private keys are PKCS#8 PEM, encrypted with a passphrase (PBES2, aes-256-cbc) when one is given;
 * public keys are SPKI PEM. Node's KeyObject does all the ASN.1 and PBES2 work.
 * Ed25519 is the signing suite (CT-SIG-01); ECDSA P-256 is accepted for sign/verify so that keys
 * from the Sigstore world can be used later, but trust stores hold Ed25519 keys only (SPEC §5).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { CtError, asIoError } from '../core/errors.js';
import { refuseExistingOutput, writeFileAtomic } from '../core/fs.js';
import { keyIdOf } from './keyid.js';

export type KeyAlgorithm = 'ed25519' | 'ecdsa-p256';

/** Cipher used when a private key is written with a passphrase. */
export const PRIVATE_KEY_CIPHER = 'aes-256-cbc';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
}

export function generateKeyPair(algorithm: KeyAlgorithm = 'ed25519'): KeyPair {
  const { privateKey, publicKey } =
    algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { privateKey, publicKey, keyId: keyIdOf(publicKey) };
}

/** Which supported algorithm a key uses; KEY_INVALID for any other key type. */
export function keyAlgorithmOf(key: KeyObject, where = 'key'): KeyAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256';
  const kind = key.asymmetricKeyType === 'ec' ? `ec ${key.asymmetricKeyDetails?.namedCurve}` : String(key.asymmetricKeyType ?? key.type);
  throw new CtError('KEY_INVALID', `${where}: unsupported key type ${kind} (Ed25519 or ECDSA P-256 expected)`, { where, keyType: kind });
}

/** PKCS#8 PEM; encrypted with `password` when it is a non-empty string. */
export function privateKeyPem(key: KeyObject, password?: string): string {
  if (password) return key.export({ type: 'pkcs8', format: 'pem', cipher: PRIVATE_KEY_CIPHER, passphrase: password }) as string;
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

export function publicKeyPem(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return pub.export({ type: 'spki', format: 'pem' }) as string;
}

export function isEncryptedPem(pem: string): boolean {
  // PKCS#8 PBES2, or the legacy OpenSSL "Proc-Type: 4,ENCRYPTED" header on SEC1/PKCS#1 keys.
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || /Proc-Type:\s*4,ENCRYPTED/.test(pem);
}

/**
 * Parses a private key PEM. An encrypted key without a password, or one the password does not
 * decrypt, is KEY_PASSWORD_REQUIRED (details.reason `missing` / `wrong`): OpenSSL cannot tell a
 * wrong password from a damaged ciphertext, and both mean "give the right password". Anything
 * that is not a private key of a supported type is KEY_INVALID.
 */
export function parsePrivateKey(pem: string, password: string | undefined, where = 'private key'): KeyObject {
  if (isEncryptedPem(pem)) {
    if (!password) {
      throw new CtError('KEY_PASSWORD_REQUIRED', `${where}: key is encrypted; set CT_KEY_PASSWORD or run in a terminal to be asked`, { where, reason: 'missing' });
    }
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem', passphrase: password });
    } catch (e) {
      throw new CtError('KEY_PASSWORD_REQUIRED', `${where}: the password does not decrypt this key`, { where, reason: 'wrong' }, { cause: e });
    }
    keyAlgorithmOf(key, where);
    return key;
  }
  if (!pem.includes('PRIVATE KEY-----')) {
    throw new CtError('KEY_INVALID', `${where}: not a PEM private key (PKCS#8 "BEGIN PRIVATE KEY" expected)`, { where });
  }
  let key: KeyObject;
  try {
    // An empty passphrase keeps OpenSSL from ever prompting on the terminal itself.
    key = createPrivateKey({ key: pem, format: 'pem', passphrase: '' });
  } catch (e) {
    throw new CtError('KEY_INVALID', `${where}: cannot parse private key (${(e as Error).message})`, { where }, { cause: e });
  }
  keyAlgorithmOf(key, where);
  return key;
}

/** Reads and parses a private key file (see parsePrivateKey for the error codes). */
export async function loadPrivateKey(path: string, password?: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (e) {
    throw asIoError(e, path);
  }
  return parsePrivateKey(pem, password, path);
}

/** Reads a public key file (SPKI PEM, or base64 SPKI DER as trust stores hold it). */
export async function loadPublicKey(path: string): Promise<KeyObject> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw asIoError(e, path);
  }
  return parsePublicKey(text, path);
}

/** Public key from PEM (SPKI, or the public half of an unencrypted private key) or base64 SPKI DER. */
export function parsePublicKey(text: string, where = 'public key'): KeyObject {
  const trimmed = text.trim();
  let key: KeyObject;
  try {
    if (trimmed.includes('PRIVATE KEY-----')) key = createPublicKey(parsePrivateKey(trimmed, undefined, where));
    else if (trimmed.includes('-----BEGIN')) key = createPublicKey(trimmed);
    else {
      // Exactly the key's DER: OpenSSL ignores trailing bytes, which would give one key many ids.
      const der = Buffer.from(trimmed, 'base64');
      key = createPublicKey({ key: der, format: 'der', type: 'spki' });
      if (!(key.export({ type: 'spki', format: 'der' }) as Buffer).equals(der) || der.toString('base64') !== trimmed) {
        throw new CtError('KEY_INVALID', `${where}: not exactly the base64 SPKI DER of a public key (trailing or non-canonical bytes)`, { where });
      }
    }
  } catch (e) {
    if (e instanceof CtError) throw e;
    throw new CtError('KEY_INVALID', `${where}: not a public key (${(e as Error).message})`, { where }, { cause: e });
  }
  keyAlgorithmOf(key, where);
  return key;
}

/** Raw signature: Ed25519 (64 bytes) or ECDSA P-256 over SHA-256 (DER, as cosign and Sigstore use). */
export function signBytes(privateKey: KeyObject, data: Uint8Array): Buffer {
  if (privateKey.type !== 'private') throw new CtError('KEY_INVALID', 'signing needs a private key', {});
  const alg = keyAlgorithmOf(privateKey);
  return alg === 'ed25519' ? sign(null, data, privateKey) : sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
}

/** True when `sig` is a valid signature of `data`; malformed signatures are simply invalid. */
export function verifyBytes(publicKey: KeyObject, data: Uint8Array, sig: Uint8Array): boolean {
  const alg = keyAlgorithmOf(publicKey);
  try {
    return alg === 'ed25519'
      ? verify(null, data, publicKey, sig)
      : verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, sig);
  } catch {
    return false;
  }
}

export interface WrittenKeyPair {
  keyId: string;
  privatePath: string;
  publicPath: string;
  encrypted: boolean;
}

/**
 * Writes `<prefix>.key` (PKCS#8 PEM, mode 0600 from creation: the temporary file is opened with
 * that mode before any byte is written, then renamed) and `<prefix>.pub` (SPKI PEM, 0644).
 * Refuses to replace existing files unless `overwrite`, also one that appears while it writes (then
 * neither file is left).
 */
export async function writeKeyPair(prefix: string, pair: KeyPair, password?: string, overwrite = false): Promise<WrittenKeyPair> {
  const privatePath = `${prefix}.key`;
  const publicPath = `${prefix}.pub`;
  for (const p of [privatePath, publicPath]) await refuseExistingOutput(p, overwrite);
  // Without overwrite, a file that appears at either name meanwhile is refused, not replaced.
  await writeFileAtomic(privatePath, privateKeyPem(pair.privateKey, password), 0o600, { replace: overwrite });
  try {
    await writeFileAtomic(publicPath, publicKeyPem(pair.publicKey), 0o644, { replace: overwrite });
  } catch (e) {
    // No half of a pair left: the private key just created (no other file was there) goes too.
    if (!overwrite) await unlink(privatePath).catch(() => undefined);
    throw e;
  }
  return { keyId: pair.keyId, privatePath, publicPath, encrypted: Boolean(password) };
}
