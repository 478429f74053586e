import { createHash, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { jsonDepthExceeds } from '../core/json.js';
import type { HostFacts } from './messages.js';
import { deriveChannelKeys, ephemeral, type ChannelKeys, type Ephemeral } from './session-keys.js';

/**
 * The channel handshake (docs/host-protocol.md, "Handshake"), bound to its transcript as TLS 1.3's
 * CertificateVerify and Noise bind theirs: each side signs the hash of every handshake byte sent so
 * far (its own message included), under a context string of its own direction, and the session keys
 * are derived with that hash as HKDF salt. A signature over re-serialised fields (the v1 scheme)
 * let anyone on the path change bytes that parse to the same value (number spellings, escapes,
 * `1e999` for a signed `null`, padding in the signature's base64) and left the host's hello unbound
 * to the challenge it answered; here any changed, dropped, swapped or replayed byte of any handshake
 * message fails the signature and no session keys agree.
 *
 * Frame: `base64url(Ed25519 signature, 86 characters)` `.` `body`, where body is the JSON text of
 * the message exactly as signed and hashed (the receiver hashes the bytes it got, never a re-parse).
 */
export const CHANNEL_PROTOCOL = 'cerro-torre-channel.v2';
export const HANDSHAKE_CONTEXT = {
  challenge: 'cerro-torre channel v2, server challenge',
  hello: 'cerro-torre channel v2, host hello',
} as const;
/** Largest handshake frame (a hello carries the host's facts). */
export const MAX_HANDSHAKE_BYTES = 64 * 1024;
/** How far a handshake message's `time` may be from the receiver's clock. */
export const HANDSHAKE_SKEW_MS = 5 * 60_000;
/** Nesting allowed in a handshake body (facts are at most 3 deep). */
const MAX_HANDSHAKE_DEPTH = 8;
const SIG_CHARS = 86;

export interface ChallengeMessage { type: 'challenge'; v: string; hostId: string; nonce: string; kx: string; time: number }
export interface HelloMessage { type: 'hello'; v: string; hostId: string; nonce: string; kx: string; time: number; facts: HostFacts; generation: number }

function fail(message: string): never {
  throw new CtError('CHANNEL_HANDSHAKE_FAILED', message);
}

/**
 * SHA-256 over every handshake message body in order, each prefixed with its length (4 bytes, big
 * endian) so that no two transcripts share an encoding.
 */
export class Transcript {
  private readonly parts: Buffer[] = [];

  append(body: Buffer): void {
    this.parts.push(body);
  }

  hash(next?: Buffer): Buffer {
    const h = createHash('sha256');
    for (const p of next ? [...this.parts, next] : this.parts) {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(p.length);
      h.update(len).update(p);
    }
    return h.digest();
  }
}

/** What is signed: TLS 1.3's layout (64 spaces, context, a zero byte, transcript hash). */
export function signedContent(context: string, transcriptHash: Buffer): Buffer {
  return Buffer.concat([Buffer.alloc(64, 0x20), Buffer.from(context, 'ascii'), Buffer.from([0]), transcriptHash]);
}

/** A signed frame over the transcript with `body` appended (also the refusal's: src/protocol/refusal.ts). */
export function writeFrame(t: Transcript, context: string, body: object, key: KeyObject): Buffer {
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  t.append(bytes);
  const sig = sign(null, signedContent(context, t.hash()), key).toString('base64url');
  return Buffer.concat([Buffer.from(`${sig}.`, 'ascii'), bytes]);
}

/** Checks the frame's signature over the transcript with its body, then appends and parses it. */
export function readFrame(t: Transcript, context: string, frame: Buffer, key: KeyObject): Record<string, unknown> {
  if (frame.length > MAX_HANDSHAKE_BYTES) fail(`handshake message larger than ${MAX_HANDSHAKE_BYTES} bytes`);
  // A v1 peer sends a JSON envelope: say so rather than "bad signature".
  if (frame[0] === 0x7b) throw new CtError('CHANNEL_VERSION_UNSUPPORTED', `the peer speaks an older channel protocol (a JSON envelope); this end speaks ${CHANNEL_PROTOCOL}: upgrade host and server together`);
  if (frame.length < SIG_CHARS + 2 || frame[SIG_CHARS] !== 0x2e) fail('not a signed handshake frame');
  const sigText = frame.subarray(0, SIG_CHARS).toString('latin1');
  const sig = Buffer.from(sigText, 'base64url');
  // One spelling only: base64url decoding skips junk, so compare the re-encoding.
  if (sig.length !== 64 || sig.toString('base64url') !== sigText) fail('handshake signature is not 64 bytes of base64url');
  const body = frame.subarray(SIG_CHARS + 1);
  if (!verify(null, signedContent(context, t.hash(body)), key, sig)) fail('handshake signature does not verify over this transcript');
  t.append(body);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    fail('handshake message is not UTF-8');
  }
  if (jsonDepthExceeds(text, MAX_HANDSHAKE_DEPTH)) fail(`handshake message nested deeper than ${MAX_HANDSHAKE_DEPTH} levels`);
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    fail('handshake message is not JSON');
  }
  if (!m || typeof m !== 'object' || Array.isArray(m)) fail('handshake message is not an object');
  return m as Record<string, unknown>;
}

const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length > 0 && v.length <= max;

/** The fields both handshake messages share, checked against what this end expects. */
function checkCommon(m: Record<string, unknown>, type: string, hostId: string, now: number): void {
  if (m.type !== type) fail(`expected ${type}, got ${typeof m.type === 'string' ? m.type.slice(0, 32) : typeof m.type}`);
  if (m.v !== CHANNEL_PROTOCOL) throw new CtError('CHANNEL_VERSION_UNSUPPORTED', `${type} speaks ${String(m.v).slice(0, 64)}, this end ${CHANNEL_PROTOCOL}: upgrade host and server together`);
  if (m.hostId !== hostId) fail(`${type} is for another host`);
  if (!str(m.nonce, 64)) fail(`${type} has no nonce`);
  if (!str(m.kx, 256)) fail(`${type} has no key exchange key`);
  if (typeof m.time !== 'number' || !(Math.abs(now - m.time) <= HANDSHAKE_SKEW_MS)) fail(`${type} is outside the allowed clock skew`);
}

function keys(eph: Ephemeral, kx: string, t: Transcript, role: 'server' | 'host'): ChannelKeys {
  try {
    return deriveChannelKeys(eph, kx, t.hash(), role);
  } catch (e) {
    fail((e as Error).message);
  }
}

/** The server's end: one per connection. */
export class ServerHandshake {
  readonly session = randomBytes(16).toString('base64url');
  private readonly transcript = new Transcript();
  private readonly eph = ephemeral();
  private state: 'new' | 'challenged' | 'done' | 'failed' = 'new';

  constructor(private readonly hostId: string, private readonly serverKey: KeyObject, private readonly hostKey: KeyObject) {}

  challenge(now = Date.now()): Buffer {
    if (this.state !== 'new') fail('challenge already sent');
    this.state = 'challenged';
    const m: ChallengeMessage = { type: 'challenge', v: CHANNEL_PROTOCOL, hostId: this.hostId, nonce: this.session, kx: this.eph.publicB64, time: now };
    return writeFrame(this.transcript, HANDSHAKE_CONTEXT.challenge, m, this.serverKey);
  }

  /** The host's hello: its signature over challenge + hello, then the session keys. */
  hello(frame: Buffer, now = Date.now()): { hello: HelloMessage; keys: ChannelKeys } {
    if (this.state !== 'challenged') fail('hello out of place');
    this.state = 'failed';
    const m = readFrame(this.transcript, HANDSHAKE_CONTEXT.hello, frame, this.hostKey);
    checkCommon(m, 'hello', this.hostId, now);
    if (m.nonce !== this.session) fail('hello answers another session');
    if (!m.facts || typeof m.facts !== 'object' || Array.isArray(m.facts)) fail('hello has no facts');
    if (!Number.isSafeInteger(m.generation) || (m.generation as number) < 0) fail('hello generation is not a non-negative integer');
    const k = keys(this.eph, m.kx as string, this.transcript, 'server');
    this.state = 'done';
    return { hello: m as unknown as HelloMessage, keys: k };
  }
}

/** The host's end: one per connection. */
export class HostHandshake {
  private readonly transcript = new Transcript();
  private readonly eph = ephemeral();
  private challenged?: ChallengeMessage;
  private state: 'new' | 'challenged' | 'done' | 'failed' = 'new';

  constructor(private readonly hostId: string, private readonly hostKey: KeyObject, private readonly serverKey: KeyObject) {}

  challenge(frame: Buffer, now = Date.now()): ChallengeMessage {
    if (this.state !== 'new') fail('challenge out of place');
    this.state = 'failed';
    const m = readFrame(this.transcript, HANDSHAKE_CONTEXT.challenge, frame, this.serverKey);
    checkCommon(m, 'challenge', this.hostId, now);
    this.challenged = m as unknown as ChallengeMessage;
    this.state = 'challenged';
    return this.challenged;
  }

  /** The signed hello answering the checked challenge, and the session keys. */
  hello(facts: HostFacts, generation: number, now = Date.now()): { frame: Buffer; keys: ChannelKeys } {
    if (this.state !== 'challenged' || !this.challenged) fail('hello before a checked challenge');
    this.state = 'done';
    const m: HelloMessage = { type: 'hello', v: CHANNEL_PROTOCOL, hostId: this.hostId, nonce: this.challenged.nonce, kx: this.eph.publicB64, time: now, facts, generation };
    const frame = writeFrame(this.transcript, HANDSHAKE_CONTEXT.hello, m, this.hostKey);
    return { frame, keys: keys(this.eph, this.challenged.kx, this.transcript, 'host') };
  }
}
