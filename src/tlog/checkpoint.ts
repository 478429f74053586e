import type { KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { HASH_SIZE } from './hashes.js';
import { canonicalBase64, signNote, splitNote, verifyNote } from './signed-note.js';

/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint) wrapped in a C2SP signed note:
 *
 *   <origin>\n<tree size>\n<base64 root hash>\n[extension lines\n]\n— <name> <base64(keyhash ‖ sig)>\n
 *
 * The Ed25519 signature covers the note text (every body line with its newline, not the blank
 * separator line). Verifiers ignore signature lines from keys they don't know.
 */
export interface Checkpoint {
  origin: string;
  treeSize: number;
  rootHash: Buffer;
  extensions?: string[];
}

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new CtError('LOG_PROOF_INVALID', `checkpoint: ${message}`, details);
}

function validLine(s: string): boolean {
  // No control characters (which also rules out newlines) and no surrounding whitespace.
  return s.length > 0 && !/^\s|\s$/.test(s) && ![...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
}

/** The checkpoint body (the signed note text), ending in a newline. */
export function formatCheckpoint(cp: Checkpoint): string {
  if (!validLine(cp.origin)) fail('origin must be one non-empty line without surrounding spaces');
  if (!Number.isSafeInteger(cp.treeSize) || cp.treeSize < 0) fail('tree size must be a non-negative integer');
  if (!Buffer.isBuffer(cp.rootHash) || cp.rootHash.length !== HASH_SIZE) fail('root hash must be 32 bytes');
  for (const e of cp.extensions ?? []) if (!validLine(e)) fail('extension lines must be non-empty single lines');
  return [cp.origin, String(cp.treeSize), cp.rootHash.toString('base64'), ...(cp.extensions ?? [])].map((l) => `${l}\n`).join('');
}

/** Parses a checkpoint body, or the body of a signed note (signatures are not checked here). */
export function parseCheckpoint(textOrNote: string): Checkpoint {
  if (typeof textOrNote !== 'string') fail('not a string');
  const text = textOrNote.includes('\n\n') ? splitNote(textOrNote).text : textOrNote;
  if (!text.endsWith('\n')) fail('text must end with a newline');
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) fail('needs origin, tree size and root hash lines');
  const [origin, size, root, ...extensions] = lines;
  if (!validLine(origin)) fail('bad origin line');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(size) || !Number.isSafeInteger(Number(size))) fail('bad tree size line');
  const rootHash = canonicalBase64(root, 'root hash');
  if (rootHash.length !== HASH_SIZE) fail('root hash must be 32 bytes');
  for (const e of extensions) if (!validLine(e)) fail('bad extension line');
  return { origin, treeSize: Number(size), rootHash, ...(extensions.length ? { extensions } : {}) };
}

/** Signs a checkpoint as a signed note by key `name` (usually the origin). */
export function signCheckpoint(cp: Checkpoint | string, name: string, privateKey: KeyObject): string {
  const text = typeof cp === 'string' ? cp : formatCheckpoint(cp);
  parseCheckpoint(text);
  return signNote(text, name, privateKey);
}

/**
 * Verifies a signed checkpoint against one trusted key; returns the checkpoint. Throws
 * LOG_PROOF_INVALID when no signature line by that key verifies or the note is malformed.
 * `origin`, when given, must match the checkpoint's origin line.
 */
export function verifyCheckpoint(note: string, name: string, publicKey: KeyObject, origin?: string): Checkpoint {
  const cp = parseCheckpoint(verifyNote(note, name, publicKey));
  if (origin !== undefined && cp.origin !== origin) fail(`origin is ${JSON.stringify(cp.origin)}, expected ${JSON.stringify(origin)}`);
  return cp;
}
