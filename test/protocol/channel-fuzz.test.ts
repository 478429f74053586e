/**
 * Seeded fuzzing of host-channel messages (#13 acceptance: "channel messages"), fixed budget.
 * Handshake frames (challenge on the host's end, hello on the server's end) and sealed frames
 * after the handshake are mutated: bytes flipped, truncated, extended, re-encoded, nested deeply,
 * oversized, replayed, reordered. Whatever comes in, the receiving end either refuses with one of
 * the channel's stable codes (bounded message), or — only for the untouched frame — accepts it.
 * Never another exception, never a changed frame accepted, never keys derived from a changed
 * transcript.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { generateKeyPairSync } from 'node:crypto';
import { CtError, ERROR_LIMITS } from '../../src/core/errors.js';
import { HostHandshake, MAX_HANDSHAKE_BYTES, ServerHandshake } from '../../src/protocol/handshake.js';
import { MacChannel } from '../../src/protocol/session-keys.js';
import type { HostFacts } from '../../src/protocol/messages.js';

const SEED = 0x13_0010;
const RUNS = 150;
const HOST = '0b6f3c1e-2a4d-4e5f-8a9b-0c1d2e3f4a5b';
const serverKey = generateKeyPairSync('ed25519');
const hostKey = generateKeyPairSync('ed25519');
const facts = { kernel: '6.1.0', architecture: 'amd64' } as unknown as HostFacts;
const HANDSHAKE_CODES = ['CHANNEL_HANDSHAKE_FAILED', 'CHANNEL_VERSION_UNSUPPORTED'];
const FRAME_CODES = ['INVALID_SIGNATURE', 'MALFORMED_BUNDLE', 'JSON_INVALID'];

const pair = () => ({
  server: new ServerHandshake(HOST, serverKey.privateKey, hostKey.publicKey),
  host: new HostHandshake(HOST, hostKey.privateKey, serverKey.publicKey),
});

type Outcome = { accepted: true } | { accepted: false; code: string; bounded: boolean };
function outcome(fn: () => unknown): Outcome {
  try {
    fn();
    return { accepted: true };
  } catch (e) {
    if (!(e instanceof CtError)) return { accepted: false, code: `NOT_A_CT_ERROR: ${String((e as Error)?.stack ?? e).slice(0, 300)}`, bounded: false };
    return { accepted: false, code: e.code, bounded: e.message.length <= ERROR_LIMITS.messageChars };
  }
}

/** One hostile edit of a frame; `same` when the result is byte-identical to the input. */
const edit = (frame: Buffer) =>
  fc.oneof(
    fc.record({ at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }).map(({ at, bit }) => {
      const b = Buffer.from(frame);
      b[at % b.length] ^= 1 << bit;
      return b;
    }),
    fc.nat().map((n) => frame.subarray(0, n % frame.length)),
    fc.uint8Array({ minLength: 1, maxLength: 64 }).map((extra) => Buffer.concat([frame, Buffer.from(extra)])),
    fc.integer({ min: 1, max: 5000 }).map((d) => Buffer.from(`${frame.toString('utf8').replace(/\}$/, '')},"x":${'['.repeat(d)}${']'.repeat(d)}}`)),
    fc.constant(Buffer.alloc(MAX_HANDSHAKE_BYTES + 1, 0x20)),
    fc.constantFrom('', '.', '{}', 'null', '[]', '"hello"', '\u0000', `${'A'.repeat(86)}.{"type":"hello"}`).map((s) => Buffer.from(s)),
    fc.tuple(fc.string(), fc.jsonValue({ maxDepth: 3 })).map(([k, v]) => {
      const text = frame.toString('utf8');
      const dot = text.indexOf('.');
      const body = JSON.parse(text.slice(dot + 1)) as Record<string, unknown>;
      const keys = Object.keys(body);
      body[keys[k.length % keys.length]] = v;
      return Buffer.from(`${text.slice(0, dot)}.${JSON.stringify(body)}`);
    }),
  );

describe('host channel fuzzing (seeded, fixed budget)', () => {
  it('hello frames: a changed frame is refused with a handshake code, never accepted, never another exception', () => {
    fc.assert(
      fc.property(fc.nat(), (n) => {
        // A fresh session each time; the edit is drawn for that session's own hello.
        const { server, host } = pair();
        host.challenge(server.challenge());
        const hello = host.hello(facts, 3).frame;
        const changed = fc.sample(edit(hello), { seed: SEED + n, numRuns: 1 })[0];
        const r = outcome(() => server.hello(changed));
        if (changed.equals(hello)) expect(r).toEqual({ accepted: true });
        else expect(r).toEqual(expect.objectContaining({ accepted: false, bounded: true, code: expect.stringMatching(new RegExp(`^(${HANDSHAKE_CODES.join('|')})$`)) }));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('challenge frames: a changed challenge is refused by the host, which then sends no hello', () => {
    fc.assert(
      fc.property(fc.nat(), (n) => {
        const { server, host } = pair();
        const challenge = server.challenge();
        const changed = fc.sample(edit(challenge), { seed: SEED + n, numRuns: 1 })[0];
        const r = outcome(() => host.challenge(changed));
        if (changed.equals(challenge)) return;
        expect(r).toEqual(expect.objectContaining({ accepted: false, bounded: true, code: expect.stringMatching(new RegExp(`^(${HANDSHAKE_CODES.join('|')})$`)) }));
        expect(outcome(() => host.hello(facts, 1))).toEqual(expect.objectContaining({ accepted: false, code: 'CHANNEL_HANDSHAKE_FAILED' }));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('sealed frames after the handshake: changed, replayed or reordered frames are refused; the channel still opens the next genuine one only in order', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), fc.nat(), fc.constantFrom('mutate', 'replay', 'reorder'), (msg, n, how) => {
        const { server, host } = pair();
        host.challenge(server.challenge());
        const h = host.hello(facts, 1);
        const s = server.hello(h.frame);
        const send = new MacChannel<unknown, unknown>(h.keys);
        const recv = new MacChannel<unknown, unknown>(s.keys);
        const first = send.seal(msg);
        const second = send.seal({ type: 'status', n });
        if (how === 'mutate') {
          const changed = fc.sample(edit(Buffer.from(first)), { seed: SEED + n, numRuns: 1 })[0].toString('latin1');
          if (changed === first) return;
          const r = outcome(() => recv.open(changed));
          expect(r).toEqual(expect.objectContaining({ accepted: false, bounded: true, code: expect.stringMatching(new RegExp(`^(${FRAME_CODES.join('|')})$`)) }));
          expect(JSON.stringify(recv.open(first))).toBe(JSON.stringify(JSON.parse(JSON.stringify({ m: msg })).m));
        } else if (how === 'replay') {
          recv.open(first);
          expect(outcome(() => recv.open(first))).toEqual(expect.objectContaining({ accepted: false, code: 'INVALID_SIGNATURE' }));
          expect(outcome(() => recv.open(second))).toEqual({ accepted: true });
        } else {
          expect(outcome(() => recv.open(second))).toEqual(expect.objectContaining({ accepted: false, code: 'INVALID_SIGNATURE' }));
          expect(outcome(() => recv.open(first))).toEqual({ accepted: true });
        }
        // A frame sealed in the other direction never opens here (each direction has its own key).
        expect(outcome(() => recv.open(new MacChannel<unknown, unknown>(s.keys).seal(msg)))).toEqual(expect.objectContaining({ accepted: false, code: 'INVALID_SIGNATURE' }));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
