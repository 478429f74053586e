import { createHmac, createPublicKey, createSecretKey, diffieHellman, generateKeyPairSync, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { assertJsonDepth } from '../core/json.js';

/**
 * After the signed handshake (challenge/hello, handshake.ts) both ends hold an ephemeral X25519
 * key of the other, authenticated by the long-term Ed25519 signatures. They derive one HMAC key
 * per direction (HKDF-SHA256, salt = the handshake transcript hash, so that two ends that saw
 * different handshake bytes agree on no key) and authenticate every later message with
 * HMAC-SHA256 over its exact bytes: a few microseconds instead of an Ed25519 signature and
 * verification per message, with forward secrecy for the session keys. Sequence numbers still
 * forbid replay, drop and reordering within a connection.
 */
export interface Ephemeral {
  privateKey: KeyObject;
  /** Raw-independent form: base64 SPKI DER of the X25519 public key. */
  publicB64: string;
}

export function ephemeral(): Ephemeral {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicB64: publicKey.export({ type: 'spki', format: 'der' }).toString('base64') };
}

export type Role = 'server' | 'host';

export interface ChannelKeys {
  send: Buffer;
  recv: Buffer;
}

export function deriveChannelKeys(own: Ephemeral, peerPublicB64: string, transcriptHash: Buffer, role: Role): ChannelKeys {
  let peer: KeyObject;
  try {
    peer = createPublicKey({ key: Buffer.from(peerPublicB64, 'base64'), format: 'der', type: 'spki' });
    if (peer.asymmetricKeyType !== 'x25519') throw new Error('not x25519');
  } catch {
    throw new CtError('KEY_INVALID', 'channel key exchange: peer key is not an X25519 public key');
  }
  const shared = diffieHellman({ privateKey: own.privateKey, publicKey: peer });
  const key = (dir: string) => Buffer.from(hkdfSync('sha256', shared, transcriptHash, Buffer.from(`cerro-torre channel v2 ${dir}`), 32));
  const s2h = key('server-to-host');
  const h2s = key('host-to-server');
  return role === 'server' ? { send: s2h, recv: h2s } : { send: h2s, recv: s2h };
}

/** Bytes of a frame before its body: the MAC (base64url of 32 bytes) and a dot. */
const MAC_CHARS = 43;

/** Seals and opens `mac.body` frames; body = JSON `{seq, msg}`. */
export class MacChannel<In, Out> {
  private sendSeq = 0;
  private recvSeq = 0;
  /** The keys as KeyObjects, made once: an HMAC keyed by a Buffer imports its key at every message. */
  private readonly sendKey: KeyObject;
  private readonly recvKey: KeyObject;

  constructor(keys: ChannelKeys) {
    this.sendKey = createSecretKey(keys.send);
    this.recvKey = createSecretKey(keys.recv);
  }

  seal(msg: Out): string {
    return this.sealText(JSON.stringify(msg));
  }

  /**
   * Seals a message given as its JSON text (`JSON.stringify` of an `Out`): the same frame `seal`
   * makes, for a message a fan-out serialises once and sends on many channels.
   */
  sealText(msgJson: string): string {
    const body = `{"seq":${++this.sendSeq},"msg":${msgJson}}`;
    return `${createHmac('sha256', this.sendKey).update(body).digest('base64url')}.${body}`;
  }

  /**
   * The frame of `sealText(shared + tail)` as bytes (UTF-8), for a message a fan-out sends to many
   * hosts: `shared` is the UTF-8 of the message's JSON text up to what differs per channel (an
   * assignment without its generation), `tail` the rest of that text. One buffer per frame, the
   * shared bytes copied once into it and MACed there: no per-host string of the whole message,
   * no second UTF-8 encoding of it (for the MAC, then for the socket). Sent as a text frame.
   */
  sealShared(shared: Buffer, tail: string): Buffer {
    const head = `{"seq":${++this.sendSeq},"msg":`;
    const tailBytes = Buffer.byteLength(tail, 'utf8');
    const frame = Buffer.allocUnsafe(MAC_CHARS + 1 + head.length + shared.length + tailBytes + 1);
    let at = MAC_CHARS + 1;
    at += frame.write(head, at, 'latin1');
    at += shared.copy(frame, at);
    at += frame.write(tail, at, 'utf8');
    frame[at] = 0x7d; // }
    frame.write(createHmac('sha256', this.sendKey).update(frame.subarray(MAC_CHARS + 1)).digest('base64url'), 0, 'latin1');
    frame[MAC_CHARS] = 0x2e; // .
    return frame;
  }

  /**
   * Opens a frame: the MAC is checked over the body's exact bytes before anything is parsed. A
   * frame as received (Buffer) is checked as it is, without first decoding it to a string and
   * encoding that again for the MAC.
   */
  open(raw: string | Buffer, maxBytes = 1024 * 1024): In {
    if (raw.length > maxBytes) throw new CtError('MALFORMED_BUNDLE', 'channel message too large');
    const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
    if (bytes.indexOf(0x2e) !== MAC_CHARS) throw new CtError('MALFORMED_BUNDLE', 'channel message is not a MAC frame');
    const body = bytes.subarray(MAC_CHARS + 1);
    const want = createHmac('sha256', this.recvKey).update(body).digest();
    const got = Buffer.from(bytes.toString('latin1', 0, MAC_CHARS), 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw new CtError('INVALID_SIGNATURE', 'channel message MAC is invalid');
    const text = body.toString('utf8');
    let parsed: { seq?: unknown; msg?: In };
    assertJsonDepth(text, 'channel message', 'JSON_INVALID');
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new CtError('JSON_INVALID', 'channel message is not JSON');
    }
    if (parsed === null || typeof parsed !== 'object') throw new CtError('JSON_INVALID', 'channel message is not a JSON object');
    if (parsed.seq !== this.recvSeq + 1) throw new CtError('INVALID_SIGNATURE', `channel message out of order: expected seq ${this.recvSeq + 1}, got ${String(parsed.seq)}`);
    this.recvSeq++;
    return parsed.msg as In;
  }
}
