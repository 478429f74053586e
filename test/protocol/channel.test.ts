import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { EnvelopeReader, seal } from '../../src/protocol/envelope.js';
import { MacChannel, deriveChannelKeys, ephemeral } from '../../src/protocol/session-keys.js';
import { CtError } from '../../src/core/errors.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as CtError).code;
  }
  return 'ACCEPTED';
};

describe('signed handshake envelopes', () => {
  const k = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  it('accepts a signed message once, in order, in its own session only', () => {
    const r = new EnvelopeReader<{ n: number }>(k.publicKey, () => 's1');
    const m1 = seal({ n: 1 }, 's1', 1, k.privateKey);
    expect(r.open(m1)).toEqual({ n: 1 });
    expect(code(() => r.open(m1))).toBe('INVALID_SIGNATURE'); // replay
    expect(code(() => new EnvelopeReader(k.publicKey, () => 's2').open(m1))).toBe('INVALID_SIGNATURE'); // other session
    expect(code(() => new EnvelopeReader(k.publicKey, () => 's1').open(seal({ n: 1 }, 's1', 1, other.privateKey)))).toBe('INVALID_SIGNATURE'); // wrong key
    expect(code(() => new EnvelopeReader(k.publicKey, () => 's1').open(seal({ n: 1 }, 's1', 1, k.privateKey, Date.now() - 3_600_000)))).toBe('INVALID_SIGNATURE'); // stale
    expect(code(() => new EnvelopeReader(k.publicKey, () => 's1').open('{"msg":'))).toBe('JSON_INVALID');
    const tampered = JSON.parse(seal({ n: 1 }, 's1', 1, k.privateKey));
    tampered.msg.n = 2;
    expect(code(() => new EnvelopeReader(k.publicKey, () => 's1').open(JSON.stringify(tampered)))).toBe('INVALID_SIGNATURE');
  });
});

describe('session MAC channel', () => {
  const pair = () => {
    const [s, h] = [ephemeral(), ephemeral()];
    return {
      server: new MacChannel<string, string>(deriveChannelKeys(s, h.publicB64, 'sess', 'server')),
      host: new MacChannel<string, string>(deriveChannelKeys(h, s.publicB64, 'sess', 'host')),
    };
  };

  it('authenticates both directions with keys derived on both ends', () => {
    const { server, host } = pair();
    expect(host.open(server.seal('assign'))).toBe('assign');
    expect(server.open(host.seal('status'))).toBe('status');
  });

  it('rejects replayed, reordered, forged and cross-direction frames', () => {
    const { server, host } = pair();
    const a = server.seal('one');
    const b = server.seal('two');
    expect(code(() => host.open(b))).toBe('INVALID_SIGNATURE'); // out of order
    expect(host.open(a)).toBe('one');
    expect(code(() => host.open(a))).toBe('INVALID_SIGNATURE'); // replay
    const forged = b.replace('"two"', '"evil"');
    expect(code(() => host.open(forged))).toBe('INVALID_SIGNATURE');
    expect(code(() => server.open(server.seal('mine')))).toBe('INVALID_SIGNATURE'); // reflected to its sender
    expect(code(() => pair().host.open(b))).toBe('INVALID_SIGNATURE'); // another session's keys
    expect(code(() => host.open('garbage'))).toBe('MALFORMED_BUNDLE');
  });

  it('refuses a peer key that is not X25519', () => {
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    expect(code(() => deriveChannelKeys(ephemeral(), ed, 's', 'host'))).toBe('KEY_INVALID');
  });
});
