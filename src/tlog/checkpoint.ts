import { sign, verify, type KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { HASH_SIZE } from './hashes.js';
import { isNoteKeyName, noteKeyHash } from './note-keys.js';

/**
 * C2SP tlog-checkpoint wrapped in a C2SP signed note:
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

const EM_DASH = '\u2014';
const B64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const MAX_NOTE = 1 << 16;

function fail(message: string, details: Record<string, unknown> = {}): never {
  throw new CtError('LOG_PROOF_INVALID', `checkpoint: ${message}`, details);
}

function strictB64(s: string, what: string): Buffer {
  const b = Buffer.from(s, 'base64');
  if (!B64_RE.test(s) || b.toString('base64') !== s) fail(`${what} is not canonical base64`);
  return b;
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

/** Splits a signed note into its text and its signature lines. */
export function splitNote(note: string): { text: string; signatures: { name: string; keyHash: Buffer; sig: Buffer }[] } {
  if (typeof note !== 'string' || note.length > MAX_NOTE) fail('note must be a string of at most 64 KiB');
  const sep = note.lastIndexOf('\n\n');
  if (sep < 0 || !note.endsWith('\n')) fail('note has no signature block');
  const text = note.slice(0, sep + 1);
  const sigLines = note.slice(sep + 2, -1).split('\n');
  const signatures = sigLines.map((line) => {
    const m = /^\u2014 (\S+) (\S+)$/u.exec(line);
    if (!m || !isNoteKeyName(m[1])) fail('malformed signature line', { line: line.slice(0, 120) });
    const raw = strictB64(m[2], 'signature');
    if (raw.length < 5) fail('signature line too short');
    return { name: m[1], keyHash: raw.subarray(0, 4), sig: raw.subarray(4) };
  });
  return { text, signatures };
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
  const rootHash = strictB64(root, 'root hash');
  if (rootHash.length !== HASH_SIZE) fail('root hash must be 32 bytes');
  for (const e of extensions) if (!validLine(e)) fail('bad extension line');
  return { origin, treeSize: Number(size), rootHash, ...(extensions.length ? { extensions } : {}) };
}

/** Signs a checkpoint as a signed note by key `name` (usually the origin). */
export function signCheckpoint(cp: Checkpoint | string, name: string, privateKey: KeyObject): string {
  if (!isNoteKeyName(name)) fail('key name must be non-empty, without spaces or "+"');
  const text = typeof cp === 'string' ? cp : formatCheckpoint(cp);
  parseCheckpoint(text);
  const sig = sign(null, Buffer.from(text, 'utf8'), privateKey);
  const payload = Buffer.concat([noteKeyHash(name, privateKey), sig]).toString('base64');
  return `${text}\n${EM_DASH} ${name} ${payload}\n`;
}

/**
 * Verifies a signed checkpoint against one trusted key; returns the checkpoint. Throws
 * LOG_PROOF_INVALID when no signature line by that key verifies or the note is malformed.
 * `origin`, when given, must match the checkpoint's origin line.
 */
export function verifyCheckpoint(note: string, name: string, publicKey: KeyObject, origin?: string): Checkpoint {
  const { text, signatures } = splitNote(note);
  const cp = parseCheckpoint(text);
  if (origin !== undefined && cp.origin !== origin) fail(`origin is ${JSON.stringify(cp.origin)}, expected ${JSON.stringify(origin)}`);
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
  return cp;
}
