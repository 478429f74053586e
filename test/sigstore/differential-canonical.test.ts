/**
 * Canonical JSON written by hand in the Sigstore verifier, against the libraries it stands in for
 * (seeded generators, so a failure reproduces):
 *
 * - envelopeJcs (src/verify/sigstore/verifier.ts) vs @sigstore/core's json.canonicalize and
 *   src/core/jcs.ts canonicalize of envelopeToJSON(envelope), on envelopes read through
 *   envelopeFromJSON (as a bundle's are): random strings with lone surrogates, U+2028/U+2029,
 *   control characters, non-BMP characters, quotes and backslashes in payloadType and keyid,
 *   random bytes, each optional field missing.
 * - the signed entry timestamp payload of src/verify/sigstore/tlog-inclusion.ts vs @sigstore/verify's
 *   own verifyTLogInclusion (tlog/set.js canonicalizes { body, integratedTime: Number(..),
 *   logIndex: Number(..), logID } with core's canonicalize): log entries read through
 *   TransparencyLogEntry.fromJSON (the only way a bundle's entry reaches the check: int64 fields are
 *   String() of whatever the JSON holds), each signed over the library's payload and over the
 *   near-misses a hand-written template could produce; the two verdicts must be the same.
 *   test/sigstore/differential-set-fast-path.test.ts does the same through the real entry point.
 */
import { describe, it, expect } from '@jest/globals';
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { envelopeFromJSON, envelopeToJSON } from '@sigstore/bundle';
import { json as coreJson } from '@sigstore/core';
import { TransparencyLogEntry } from '@sigstore/protobuf-specs';
import type { TrustMaterial } from '@sigstore/verify';
import { verifyTLogInclusion } from '@sigstore/verify/dist/tlog/index.js';
import { envelopeJcs } from '../../src/verify/sigstore/verifier.js';
import { inclusionHolds, type InclusionEntry } from '../../src/verify/sigstore/tlog-inclusion.js';
import { canonicalize } from '../../src/core/jcs.js';
import { rng, type Rng } from './prng.js';
import { randomInt, signedTexts } from './int64-cases.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type TLogAuthority = TrustMaterial['tlogs'][number];

const CHARS = ['a', 'Z', '0', ' ', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\u0000', '\u0001', '\u001f', '\u007f', '\u0080', '\u00e9', 'e\u0301',
  '\u2028', '\u2029', '\ud800', '\udbff', '\udc00', '\udfff', '\ud83d\ude00', '\u{10ffff}', '\ufeff', '\uffff', '\ufffe', '<', '>', '&', "'", '\u0085', '\u00a0'];

function text(r: Rng): string {
  let s = '';
  for (let n = r.int(12); n > 0; n--) s += r.pick(CHARS);
  return s;
}

function bytes(r: Rng): Buffer {
  return Buffer.from(Array.from({ length: r.pick([0, 0, 1, 2, 3, 4, 5, 32, 71]) }, () => r.int(256)));
}

/** An envelope's JSON, any optional field left out, payloadType sometimes not a string (fromJSON String()s it). */
function envelopeJson(r: Rng): Json {
  const out: Json = {};
  if (r.chance(0.8)) out.payload = bytes(r).toString('base64');
  if (r.chance(0.8)) out.payloadType = r.chance(0.9) ? text(r) : r.pick<unknown>([7, -0, 1e21, true, [text(r), text(r)]]);
  if (r.chance(0.85)) {
    out.signatures = Array.from({ length: r.pick([0, 1, 1, 1, 2, 3]) }, () => {
      const s: Json = {};
      if (r.chance(0.8)) s.sig = bytes(r).toString('base64');
      if (r.chance(0.7)) s.keyid = r.chance(0.9) ? text(r) : r.pick<unknown>([0, 12, false]);
      return s;
    });
  }
  return out;
}

describe('envelopeJcs vs canonicalize(envelopeToJSON(envelope))', () => {
  it('writes what @sigstore/core and src/core/jcs.ts write, on 4,000 generated envelopes', () => {
    const r = rng(0xe17e);
    const wrong: string[] = [];
    let escaped = 0;
    let omitted = 0;
    for (let i = 0; i < 4000; i++) {
      const env = envelopeFromJSON(envelopeJson(r));
      const ours = envelopeJcs(env);
      const core = coreJson.canonicalize(envelopeToJSON(env));
      const jcs = canonicalize(envelopeToJSON(env));
      if (ours !== core || ours !== jcs) wrong.push(JSON.stringify({ env: envelopeToJSON(env), ours, core, jcs }));
      if (/\\u|\\"|\\\\/.test(ours)) escaped++;
      if (!ours.includes('"payloadType"') || !ours.includes('"payload"') || ours.includes('{}')) omitted++;
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    // Escapes and left-out fields occurred often enough to mean something.
    expect(escaped).toBeGreaterThan(1000);
    expect(omitted).toBeGreaterThan(1000);
  });

  it('can fail: a template that does not escape keyid would be caught', () => {
    const env = envelopeFromJSON({ payload: 'AQ==', payloadType: 'x', signatures: [{ sig: 'AQ==', keyid: 'a"\u2028\ud800' }] });
    expect(envelopeJcs(env)).toBe(coreJson.canonicalize(envelopeToJSON(env)));
    expect(envelopeJcs(env)).not.toBe('{"payload":"AQ==","payloadType":"x","signatures":[{"keyid":"a"\u2028\ud800","sig":"AQ=="}]}');
  });
});

function libraryHolds(entry: InclusionEntry, tlogs: TLogAuthority[]): boolean {
  try {
    verifyTLogInclusion(entry as unknown as Parameters<typeof verifyTLogInclusion>[0], tlogs);
    return true;
  } catch {
    return false;
  }
}

describe('signed entry timestamp payload vs @sigstore/verify (tlog/set.js)', () => {
  const key = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const idOf = (k: KeyObject) => createHash('sha256').update(k.export({ type: 'spki', format: 'der' })).digest();
  const logID = idOf(key.publicKey);
  const authority = (publicKey: KeyObject, start: Date, end: Date): TLogAuthority => ({ logID: idOf(publicKey), publicKey, validFor: { start, end } } as TLogAuthority);
  const sets: [string, TLogAuthority[]][] = [
    ['one log, valid always', [authority(key.publicKey, new Date(-8.64e15), new Date(8.64e15))]],
    ['one log, valid during 2024', [authority(key.publicKey, new Date('2024-01-01T00:00:00Z'), new Date('2025-01-01T00:00:00Z'))]],
    ['another log first, then ours from 2024', [authority(other.publicKey, new Date(0), new Date(8.64e15)), authority(key.publicKey, new Date('2024-01-01T00:00:00Z'), new Date(8.64e15))]],
  ];
  const body = Buffer.from('{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{}}');

  it('the same verdict on every entry and every signed text (entries read by TransparencyLogEntry.fromJSON)', () => {
    const r = rng(0x5e7);
    const wrong: string[] = [];
    let compared = 0;
    let held = 0;
    let nearMissHeld = 0;
    for (let i = 0; i < 500; i++) {
      const itJson = randomInt(r);
      const liJson = randomInt(r);
      // What the entry holds after the schema: String() of the JSON value (or "0" when absent).
      const probe = TransparencyLogEntry.fromJSON({ integratedTime: itJson, logIndex: liJson });
      const texts = signedTexts(body, logID, probe.integratedTime, probe.logIndex);
      texts.forEach((t, which) => {
        const entry = TransparencyLogEntry.fromJSON({
          logIndex: liJson, integratedTime: itJson, logId: { keyId: logID.toString('base64') }, kindVersion: { kind: 'hashedrekord', version: '0.0.1' },
          inclusionPromise: { signedEntryTimestamp: sign('sha256', Buffer.from(t, 'utf8'), key.privateKey).toString('base64') }, canonicalizedBody: body.toString('base64'),
        }) as unknown as InclusionEntry;
        for (const [name, tlogs] of sets) {
          const ours = inclusionHolds(entry, tlogs);
          const lib = libraryHolds(entry, tlogs);
          compared++;
          if (lib) held++;
          if (lib && which > 0) nearMissHeld++;
          if (ours !== lib) wrong.push(`${name}: integratedTime ${JSON.stringify(itJson)}, logIndex ${JSON.stringify(liJson)}, text #${which} ${t.slice(-80)}: ours ${ours}, library ${lib}`);
        }
      });
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(compared).toBe(500 * 6 * 3);
    // The library's own payload held often (finite times inside a window), near misses rarely
    // (only where they write the same text, e.g. an integer already in canonical form).
    expect(held).toBeGreaterThan(800);
    expect(nearMissHeld).toBeGreaterThan(50);
    expect(nearMissHeld).toBeLessThan(held);
  });

  it('no log id, no promise, an empty SET: both refuse', () => {
    const t = signedTexts(body, logID, '5', '5')[0];
    const base = { logIndex: '5', integratedTime: '5', logId: { keyId: logID.toString('base64') }, canonicalizedBody: body.toString('base64') };
    const cases: Json[] = [
      { ...base, logId: undefined, inclusionPromise: { signedEntryTimestamp: sign('sha256', Buffer.from(t), key.privateKey).toString('base64') } },
      { ...base },
      { ...base, inclusionPromise: {} },
      { ...base, inclusionPromise: { signedEntryTimestamp: sign('sha256', Buffer.from(t), other.privateKey).toString('base64') } },
    ];
    for (const c of cases) {
      const entry = TransparencyLogEntry.fromJSON(c) as unknown as InclusionEntry;
      expect({ c, ours: inclusionHolds(entry, sets[0][1]) }).toEqual({ c, ours: libraryHolds(entry, sets[0][1]) });
      expect(inclusionHolds(entry, sets[0][1])).toBe(false);
    }
  });
});
