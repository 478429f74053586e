import { randomBytes, type KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { CHANNEL_PROTOCOL, MAX_HANDSHAKE_BYTES, readFrame, Transcript, writeFrame } from './handshake.js';

/**
 * The server's signed "no" to a host it will not let in (docs/host-protocol.md, "Refusal"): sent
 * instead of the challenge, then the connection is closed. It is what lets an agent stop for good
 * on an answer only the server could give: a WebSocket close code (4403, 4401) is not authenticated,
 * so anything on the path (an attacker, a misconfigured proxy) could send one, and an agent that
 * stopped on it could be made to leave a healthy host without a channel for good. This frame is
 * signed with the server's long-term key the host pinned at enrolment, under a context of its own
 * (a challenge can never pass as one), and carries the nonce the host chose for this connection:
 * one recorded earlier cannot be replayed into another connection.
 */
export const REFUSAL_CONTEXT = 'cerro-torre channel v2, server refusal';
/** The upgrade request's header carrying the host's nonce; without it the server sends no refusal. */
export const REFUSAL_NONCE_HEADER = 'x-ct-refusal-nonce';
/** HOST_REMOVED: the id was removed (hosts_removed); HOST_UNKNOWN: the server never knew it. */
export type RefusalCode = 'HOST_REMOVED' | 'HOST_UNKNOWN';

const NONCE = /^[A-Za-z0-9_-]{22,64}$/;
const CODES = new Set<string>(['HOST_REMOVED', 'HOST_UNKNOWN']);
/** What every refusal body starts with (writeFrame's JSON keeps this key order). */
const PREFIX = Buffer.from('{"type":"refused"');
const SIG_CHARS = 86;

export interface RefusalMessage { type: 'refused'; v: string; hostId: string; nonce: string; code: RefusalCode }

/** A fresh nonce for one connection (16 random bytes). */
export function refusalNonce(): string {
  return randomBytes(16).toString('base64url');
}

/** The header's value when it is a nonce; anything else (absent, repeated, too long) is none. */
export function nonceFrom(header: unknown): string | undefined {
  return typeof header === 'string' && NONCE.test(header) ? header : undefined;
}

export function refusalFrame(serverKey: KeyObject, hostId: string, nonce: string, code: RefusalCode): Buffer {
  const m: RefusalMessage = { type: 'refused', v: CHANNEL_PROTOCOL, hostId, nonce, code };
  return writeFrame(new Transcript(), REFUSAL_CONTEXT, m, serverKey);
}

/** Whether a first server frame says it is a refusal (not checked yet: readRefusal checks it). */
export function claimsRefusal(frame: Buffer): boolean {
  return frame.length <= MAX_HANDSHAKE_BYTES && frame.subarray(SIG_CHARS + 1, SIG_CHARS + 1 + PREFIX.length).equals(PREFIX);
}

/**
 * The refusal's code once its signature (by `serverKey`), host id, version and nonce (this
 * connection's) are checked; throws CHANNEL_HANDSHAKE_FAILED otherwise (a forged or replayed one).
 */
export function readRefusal(frame: Buffer, serverKey: KeyObject, hostId: string, nonce: string): RefusalCode {
  const m = readFrame(new Transcript(), REFUSAL_CONTEXT, frame, serverKey);
  const fail = (why: string): never => {
    throw new CtError('CHANNEL_HANDSHAKE_FAILED', `refusal ${why}`);
  };
  if (m.type !== 'refused') fail('is not a refusal');
  if (m.v !== CHANNEL_PROTOCOL) fail('speaks another channel version');
  if (m.hostId !== hostId) fail('is for another host');
  if (m.nonce !== nonce) fail('answers another connection');
  if (typeof m.code !== 'string' || !CODES.has(m.code)) fail('has no known code');
  return m.code as RefusalCode;
}
