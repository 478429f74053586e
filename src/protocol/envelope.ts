import { sign, verify, type KeyObject } from 'node:crypto';
import { canonicalBytes } from '../core/jcs.js';
import { CtError } from '../core/errors.js';
import { assertJsonDepth } from '../core/json.js';
import type { Envelope } from './messages.js';

/**
 * Signs and checks channel envelopes: Ed25519 over the JCS form of `{msg, session, seq, time}`.
 * `session` is the server's per-connection nonce, so a message recorded on one connection cannot
 * be replayed on another; `seq` must increase by one per direction, so none can be replayed or
 * dropped within a connection; `time` bounds clock skew.
 */
export function seal<M>(msg: M, session: string, seq: number, key: KeyObject, now = Date.now()): string {
  const body = { msg, session, seq, time: now };
  const sig = sign(null, canonicalBytes(body), key).toString('base64');
  return JSON.stringify({ ...body, sig });
}

export class EnvelopeReader<M> {
  private expected = 1;

  constructor(private readonly key: KeyObject, private readonly session: () => string, private readonly skewMs = 5 * 60_000) {}

  open(raw: string, maxBytes = 1024 * 1024): M {
    if (raw.length > maxBytes) throw new CtError('MALFORMED_BUNDLE', 'channel message too large');
    let env: Envelope<M>;
    assertJsonDepth(raw, 'channel message', 'JSON_INVALID');
    try {
      env = JSON.parse(raw);
    } catch {
      throw new CtError('JSON_INVALID', 'channel message is not JSON');
    }
    if (!env || typeof env !== 'object' || typeof env.sig !== 'string' || typeof env.seq !== 'number' || typeof env.session !== 'string' || typeof env.time !== 'number') {
      throw new CtError('MALFORMED_BUNDLE', 'channel message is not an envelope');
    }
    const { sig, ...body } = env;
    if (!verify(null, canonicalBytes(body), this.key, Buffer.from(sig, 'base64'))) throw new CtError('INVALID_SIGNATURE', 'channel message signature is invalid');
    if (env.session !== this.session()) throw new CtError('INVALID_SIGNATURE', 'channel message belongs to another session');
    if (env.seq !== this.expected) throw new CtError('INVALID_SIGNATURE', `channel message out of order: expected seq ${this.expected}, got ${env.seq}`);
    if (Math.abs(Date.now() - env.time) > this.skewMs) throw new CtError('INVALID_SIGNATURE', 'channel message outside the allowed clock skew');
    this.expected++;
    return env.msg;
  }
}
