import { createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
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

/** Seals and opens `mac.body` frames; body = JSON `{seq, msg}`. */
export class MacChannel<In, Out> {
  private sendSeq = 0;
  private recvSeq = 0;

  constructor(private readonly keys: ChannelKeys) {}

  seal(msg: Out): string {
    return this.sealText(JSON.stringify(msg));
  }

  /**
   * Seals a message given as its JSON text (`JSON.stringify` of an `Out`): the same frame `seal`
   * makes, for a message a fan-out serialises once and sends on many channels.
   */
  sealText(msgJson: string): string {
    const body = `{"seq":${++this.sendSeq},"msg":${msgJson}}`;
    return `${createHmac('sha256', this.keys.send).update(body).digest('base64url')}.${body}`;
  }

  open(raw: string, maxBytes = 1024 * 1024): In {
    if (raw.length > maxBytes) throw new CtError('MALFORMED_BUNDLE', 'channel message too large');
    const dot = raw.indexOf('.');
    if (dot !== 43) throw new CtError('MALFORMED_BUNDLE', 'channel message is not a MAC frame');
    const body = raw.slice(dot + 1);
    const want = createHmac('sha256', this.keys.recv).update(body).digest();
    const got = Buffer.from(raw.slice(0, dot), 'base64url');
    if (got.length !== want.length || !timingSafeEqual(got, want)) throw new CtError('INVALID_SIGNATURE', 'channel message MAC is invalid');
    let parsed: { seq?: unknown; msg?: In };
    assertJsonDepth(body, 'channel message', 'JSON_INVALID');
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new CtError('JSON_INVALID', 'channel message is not JSON');
    }
    if (parsed.seq !== this.recvSeq + 1) throw new CtError('INVALID_SIGNATURE', `channel message out of order: expected seq ${this.recvSeq + 1}, got ${String(parsed.seq)}`);
    this.recvSeq++;
    return parsed.msg as In;
  }
}
