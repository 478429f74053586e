import { describe, expect, it } from '@jest/globals';
import { createHash, createHmac, generateKeyPairSync } from 'node:crypto';
import { MacChannel, deriveChannelKeys, ephemeral } from '../../src/protocol/session-keys.js';
import { CHANNEL_PROTOCOL, HostHandshake, ServerHandshake } from '../../src/protocol/handshake.js';
import type { HostFacts } from '../../src/protocol/messages.js';
import { CtError } from '../../src/core/errors.js';

const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as CtError).code;
  }
  return 'ACCEPTED';
};

const facts = { kernel: '6.1.0', architecture: 'amd64' } as unknown as HostFacts;

describe('transcript-bound handshake', () => {
  const serverKey = generateKeyPairSync('ed25519');
  const hostKey = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');
  const HOST = '0b6f3c1e-2a4d-4e5f-8a9b-0c1d2e3f4a5b';
  const pair = () => ({ server: new ServerHandshake(HOST, serverKey.privateKey, hostKey.publicKey), host: new HostHandshake(HOST, hostKey.privateKey, serverKey.publicKey) });
  const edit = (frame: Buffer, from: string, to: string) => {
    const text = frame.toString('utf8');
    if (!text.includes(from)) throw new Error(`no ${from} in ${text}`);
    return Buffer.from(text.replace(from, to));
  };

  it('agrees on keys when both ends saw the same bytes', () => {
    const { server, host } = pair();
    host.challenge(server.challenge());
    const h = host.hello(facts, 7);
    const s = server.hello(h.frame);
    expect(s.hello).toMatchObject({ type: 'hello', v: CHANNEL_PROTOCOL, hostId: HOST, nonce: server.session, generation: 7, facts });
    expect(new MacChannel<string, string>(h.keys).open(new MacChannel<string, string>(s.keys).seal('welcome'))).toBe('welcome');
  });

  it('refuses any changed byte of the hello, also one that parses to the same value', () => {
    for (const [from, to] of [['"generation":7', '"generation":8'], ['"generation":7', '"generation":7.0'], ['"kernel":"6.1.0"', '"kernel":"\\u0036.1.0"'], ['{"type"', ' {"type"']]) {
      const { server, host } = pair();
      host.challenge(server.challenge());
      const hello = host.hello(facts, 7).frame;
      expect([from, code(() => server.hello(edit(hello, from, to)))]).toEqual([from, 'CHANNEL_HANDSHAKE_FAILED']);
    }
  });

  it('refuses a changed challenge byte on the host, and binds the hello to the challenge it answered', () => {
    const { server, host } = pair();
    const challenge = server.challenge();
    expect(code(() => host.challenge(edit(challenge, '"type"', ' "type"')))).toBe('CHANNEL_HANDSHAKE_FAILED');
    // A challenge of another session (same host, same server key): the hello answers it, not ours.
    const a = pair();
    const b = pair();
    b.server.challenge();
    a.host.challenge(a.server.challenge());
    expect(code(() => b.server.hello(a.host.hello(facts, 1).frame))).toBe('CHANNEL_HANDSHAKE_FAILED');
    // A hello replayed into another connection.
    const c = pair();
    const d = pair();
    c.host.challenge(c.server.challenge());
    const helloC = c.host.hello(facts, 1).frame;
    c.server.hello(helloC);
    d.server.challenge();
    expect(code(() => d.server.hello(helloC))).toBe('CHANNEL_HANDSHAKE_FAILED');
  });

  it('refuses wrong keys, another host, other contexts, other versions, stale times and out-of-order calls', () => {
    const wrongKey = new ServerHandshake(HOST, other.privateKey, hostKey.publicKey);
    expect(code(() => pair().host.challenge(wrongKey.challenge()))).toBe('CHANNEL_HANDSHAKE_FAILED');
    const forOther = new ServerHandshake('11111111-2222-4333-8444-555555555555', serverKey.privateKey, hostKey.publicKey);
    expect(code(() => pair().host.challenge(forOther.challenge()))).toBe('CHANNEL_HANDSHAKE_FAILED');
    // A challenge is not a hello (per-direction contexts), even signed with a key both trust.
    const same = generateKeyPairSync('ed25519');
    const s1 = new ServerHandshake(HOST, same.privateKey, same.publicKey);
    expect(code(() => s1.hello(new ServerHandshake(HOST, same.privateKey, same.publicKey).challenge()))).toBe('CHANNEL_HANDSHAKE_FAILED');
    const { server, host } = pair();
    const stale = server.challenge(Date.now() - 3_600_000);
    expect(code(() => host.challenge(stale))).toBe('CHANNEL_HANDSHAKE_FAILED');
    const p = pair();
    expect(code(() => p.server.hello(Buffer.from('x')))).toBe('CHANNEL_HANDSHAKE_FAILED'); // before the challenge
    expect(code(() => p.host.hello(facts, 1))).toBe('CHANNEL_HANDSHAKE_FAILED'); // before a challenge
    expect(code(() => pair().host.challenge(Buffer.from('{"msg":{"type":"challenge"},"session":"s","seq":1,"time":0,"sig":""}')))).toBe('CHANNEL_VERSION_UNSUPPORTED');
  });
});

describe('session MAC channel', () => {
  const th = createHash('sha256').update('transcript').digest();
  const pair = () => {
    const [s, h] = [ephemeral(), ephemeral()];
    return {
      server: new MacChannel<string, string>(deriveChannelKeys(s, h.publicB64, th, 'server')),
      host: new MacChannel<string, string>(deriveChannelKeys(h, s.publicB64, th, 'host')),
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

  it('seals a message given as its JSON text into the frame seal makes, in the same sequence', () => {
    const a = pair();
    const b = pair();
    // Same keys on both sides would give equal frames; here: same sequence and value, opened by the peer.
    const msg = { type: 'assign', assignment: { app: 'web', generation: 3 } } as unknown as string;
    expect(a.host.open(a.server.sealText(JSON.stringify(msg)))).toEqual(msg);
    expect(a.host.open(a.server.seal(msg))).toEqual(msg);
    expect(a.host.open(a.server.sealText('"third"'))).toBe('third');
    // A frame of one session's sealText is another session's forgery.
    expect(code(() => b.host.open(a.server.sealText('"x"')))).toBe('INVALID_SIGNATURE');
    const same = new MacChannel<string, string>({ send: Buffer.alloc(32, 1), recv: Buffer.alloc(32, 2) });
    const twin = new MacChannel<string, string>({ send: Buffer.alloc(32, 1), recv: Buffer.alloc(32, 2) });
    expect(same.sealText(JSON.stringify(msg))).toBe(twin.seal(msg));
  });

  it('seals a fan-out message from shared bytes and a per-channel tail into the bytes of the same frame, and opens frames as received (bytes)', () => {
    const keys = { send: Buffer.alloc(32, 1), recv: Buffer.alloc(32, 2) };
    const same = new MacChannel<string, unknown>(keys);
    const twin = new MacChannel<string, unknown>(keys);
    // Non-ASCII in both parts: lengths are bytes, not characters.
    const assignment = { type: 'assign', assignment: { app: 'wéb', vsas: ['x'.repeat(3000)] } };
    const text = JSON.stringify(assignment).slice(0, -2);
    for (const generation of [7, 12345678]) {
      const tail = `,"generation":${generation},"note":"ü"}}`;
      const frame = same.sealShared(Buffer.from(text, 'utf8'), tail);
      expect(frame.equals(Buffer.from(twin.sealText(text + tail), 'utf8'))).toBe(true);
    }
    const peer = new MacChannel<unknown, string>({ send: keys.recv, recv: keys.send });
    const sender = new MacChannel<string, unknown>(keys);
    const frame = sender.sealShared(Buffer.from(text, 'utf8'), ',"generation":9}}');
    expect(peer.open(frame)).toEqual({ type: 'assign', assignment: { ...assignment.assignment, generation: 9 } });
    // Bytes opened as they came: any changed byte, a replay, an oversized frame are refused.
    const next = sender.sealShared(Buffer.from(text, 'utf8'), ',"generation":10}}');
    for (const at of [0, 42, 43, 44, next.length - 1]) {
      const changed = Buffer.from(next);
      changed[at] ^= 0x01;
      expect([at, code(() => peer.open(changed))]).toEqual([at, at === 43 ? 'MALFORMED_BUNDLE' : 'INVALID_SIGNATURE']);
    }
    expect(code(() => peer.open(frame))).toBe('INVALID_SIGNATURE');
    expect(code(() => peer.open(next, 100))).toBe('MALFORMED_BUNDLE');
    expect(peer.open(next)).toMatchObject({ assignment: { generation: 10 } });
    // A MACed body that is JSON but not an object is refused with a code, not a TypeError.
    const body = 'null';
    const forged = Buffer.from(`${createHmac('sha256', keys.send).update(body).digest('base64url')}.${body}`);
    expect(code(() => peer.open(forged))).toBe('JSON_INVALID');
  });

  it('refuses a peer key that is not X25519', () => {
    const ed = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    expect(code(() => deriveChannelKeys(ephemeral(), ed, th, 'host'))).toBe('KEY_INVALID');
  });
});
