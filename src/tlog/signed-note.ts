import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';

/*
 * C2SP signed notes (https://c2sp.org/signed-note), Ed25519 only:
 *   <text ending in \n>\n— <key name> <base64(4-byte key hash ‖ 64-byte signature)>\n …
 * The signature covers the text exactly (not the blank separator line).
 */

/** C2SP signed-note signature type byte for Ed25519. */
export const ED25519_ALG = 0x01;

/** The 32 raw bytes of an Ed25519 public (or private) key. */
export function rawEd25519(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  if (pub.asymmetricKeyType !== 'ed25519') throw new CtError('KEY_INVALID', `log key must be Ed25519, not ${pub.asymmetricKeyType}`);
  const jwk = pub.export({ format: 'jwk' });
  return Buffer.from(jwk.x as string, 'base64url');
}

/** C2SP signed-note key hash: first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ pubkey). */
export function noteKeyHash(name: string, key: KeyObject): Buffer {
  return createHash('sha256')
    .update(Buffer.from(name, 'utf8'))
    .update(Buffer.from([0x0a, ED25519_ALG]))
    .update(rawEd25519(key))
    .digest()
    .subarray(0, 4);
}

/** C2SP verifier key string `<name>+<hex key hash>+<base64(0x01 ‖ pubkey)>` (as Go's note.NewVerifier reads). */
export function noteVerifierKey(name: string, key: KeyObject): string {
  const raw = Buffer.concat([Buffer.from([ED25519_ALG]), rawEd25519(key)]);
  return `${name}+${noteKeyHash(name, key).toString('hex')}+${raw.toString('base64')}`;
}

/** A key name per C2SP signed-note: non-empty, no whitespace and no '+'. */
export function isNoteKeyName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && !/[\s+]/u.test(name);
}

const EM_DASH = '\u2014';
const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const MAX_NOTE = 1 << 16;

export interface NoteSignature {
  name: string;
  keyHash: Buffer;
  sig: Buffer;
}

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new CtError('LOG_PROOF_INVALID', `signed note: ${message}`, details);
}

/** Decodes base64 that re-encodes to itself (no whitespace, no stray padding). */
export function canonicalBase64(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'base64');
  if (!B64_RE.test(s) || b.toString('base64') !== s) fail(`${what} is not canonical base64`);
  return b;
}

/** Splits a signed note into its text and its signature lines (nothing verified). */
export function splitNote(note: string): { text: string; signatures: NoteSignature[] } {
  if (typeof note !== 'string' || note.length > MAX_NOTE) fail('note must be a string of at most 64 KiB');
  const sep = note.lastIndexOf('\n\n');
  if (sep < 0 || !note.endsWith('\n')) fail('note has no signature block');
  const text = note.slice(0, sep + 1);
  const signatures = note
    .slice(sep + 2, -1)
    .split('\n')
    .map((line) => {
      const m = /^\u2014 (\S+) (\S+)$/u.exec(line);
      if (!m || !isNoteKeyName(m[1])) fail('malformed signature line', { line: line.slice(0, 120) });
      const raw = canonicalBase64(m[2], 'signature');
      if (raw.length < 5) fail('signature line too short');
      return { name: m[1], keyHash: raw.subarray(0, 4), sig: raw.subarray(4) };
    });
  return { text, signatures };
}

/** Signs `text` (non-empty, ending in a newline) as a signed note by key `name`. */
export function signNote(text: string, name: string, privateKey: KeyObject): string {
  if (!isNoteKeyName(name)) fail('key name must be non-empty, without spaces or "+"');
  if (typeof text !== 'string' || !text.endsWith('\n') || text.includes('\n\n')) fail('text must end in a newline and hold no blank line');
  const sig = sign(null, Buffer.from(text, 'utf8'), privateKey);
  return `${text}\n${EM_DASH} ${name} ${Buffer.concat([noteKeyHash(name, privateKey), sig]).toString('base64')}\n`;
}

/**
 * Returns the text of a note carrying a valid signature by (`name`, `publicKey`); signature lines
 * of other keys are ignored, as C2SP requires. Throws LOG_PROOF_INVALID otherwise.
 */
export function verifyNote(note: string, name: string, publicKey: KeyObject): string {
  const { text, signatures } = splitNote(note);
  const kh = noteKeyHash(name, publicKey);
  const ok = signatures.some((s) => {
    if (s.name !== name || !s.keyHash.equals(kh)) return false;
    try {
      return verify(null, Buffer.from(text, 'utf8'), publicKey, s.sig);
    } catch {
      return false;
    }
  });
  if (!ok) fail(`no valid signature by ${name}`, { name });
  return text;
}
