/**
 * The strict bundle parse (src/verify/sigstore/shape.ts) against the library it guards: a key of a
 * bundle JSON is READ when deleting it or replacing its value changes
 * Bundle.toJSON(Bundle.fromJSON(json)) of @sigstore/protobuf-specs (or makes fromJSON throw), and
 * IGNORED otherwise. On bundle JSON generated from the real fixtures (seeded, so a failure
 * reproduces): unknown keys at every depth, camelCase / snake_case / other spellings of the field
 * names, `__proto__` / `constructor` / `toString` as own keys (the text goes through JSON.parse), both
 * arms of a oneof, int64 fields written as "00", "-0", "+1", "1e3", "1.0", scalars in arrays, bytes
 * as arrays and Buffer-like objects, defaults, removals:
 *
 * - bundleKeysAllWritten (the short way) never says "all written" when any key is ignored;
 * - strictBundleFromJSON (what callers run) refuses every bundle with an ignored key, except one
 *   holding its default value under a field name of the format (protobuf JSON omits those when
 *   writing: the documented allowance, which carries no bytes).
 *
 * test/sigstore/shape.test.ts compares the short way with the re-serialising check; this compares
 * both with the library.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { Bundle as PbBundle } from '@sigstore/protobuf-specs';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signAttestationForCtp, signMessage } from '../../src/sign/index.js';
import { bundleKeysAllWritten, strictBundleFromJSON } from '../../src/verify/sigstore/shape.js';
import { artifact, artifactDigest, keylessOptions, samplesDir, statementFor } from './fixtures.js';
import { rng, type Rng } from './prng.js';

const SAMPLES = samplesDir();
const GENERATED = join(process.cwd(), 'node_modules', '@sigstore', 'protobuf-specs', 'dist', '__generated__');

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let m: SigstoreMock;
const fixtures: Json[] = [];

beforeAll(async () => {
  m = await startSigstoreMock();
  const dsse = (await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()))) as Json;
  const message = (await signMessage(artifact, keylessOptions(m, await m.githubToken()))) as Json;
  fixtures.push(dsse, message);
  for (const s of ['happy-path-v0.3', 'happy-path-intoto-in-dsse-v3']) fixtures.push(JSON.parse(readFileSync(join(SAMPLES, s, 'bundle.sigstore.json'), 'utf8')));
  const chain = structuredClone(dsse);
  chain.mediaType = 'application/vnd.dev.sigstore.bundle+json;version=0.2';
  chain.verificationMaterial.x509CertificateChain = { certificates: [chain.verificationMaterial.certificate, chain.verificationMaterial.certificate] };
  delete chain.verificationMaterial.certificate;
  const hint = structuredClone(dsse);
  hint.verificationMaterial.publicKey = { hint: 'key-1' };
  delete hint.verificationMaterial.certificate;
  fixtures.push(chain, hint);
});
afterAll(async () => { await m.close(); });

/**
 * Every name the generated fromJSON of the messages reads (`object.name`), taken from the library's
 * own code: the names under which a default value may be left (protobuf JSON omits defaults).
 */
const LIB_FIELDS: ReadonlySet<string> = new Set(['envelope.js', 'sigstore_bundle.js', 'sigstore_rekor.js', 'sigstore_common.js']
  .flatMap((f) => [...readFileSync(join(GENERATED, f), 'utf8').matchAll(/\bobject\??\.(\w+)/g)].map((x) => x[1])));

/** protobuf JSON's default values (what toJSON leaves out). */
function isDefault(v: unknown): boolean {
  if (v === null || v === '' || v === 0 || v === '0' || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v as object).length === 0;
}

function define(o: Json, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, configurable: true, writable: true });
}

const THROWS = '\u0000throws';

function roundTrip(json: unknown): string {
  try {
    return JSON.stringify(PbBundle.toJSON(PbBundle.fromJSON(json)));
  } catch {
    return THROWS;
  }
}

/**
 * The oracle: each key whose deletion and replacement (by another base64 string, by a number) leave
 * the library's round trip as it was. An ignored key's own keys are not listed (it is reported).
 */
function ignoredKeys(input: Json): { path: string; key: string; value: unknown }[] {
  const json = JSON.parse(JSON.stringify(input)) as Json;
  const base = roundTrip(json);
  const out: { path: string; key: string; value: unknown }[] = [];
  const visit = (o: unknown, path: string) => {
    if (Array.isArray(o)) {
      o.forEach((c, i) => visit(c, `${path}[${i}]`));
      return;
    }
    if (o === null || typeof o !== 'object') return;
    const obj = o as Json;
    for (const k of Object.keys(obj)) {
      const desc = Object.getOwnPropertyDescriptor(obj, k) as PropertyDescriptor;
      const v: unknown = desc.value;
      let read = false;
      delete obj[k];
      if (roundTrip(json) !== base) read = true;
      for (const probe of [v === 'AQIDBA==' ? 'BQYHCA==' : 'AQIDBA==', 424242]) {
        if (read) break;
        define(obj, k, probe);
        if (roundTrip(json) !== base) read = true;
      }
      delete obj[k];
      Object.defineProperty(obj, k, desc);
      if (!read) out.push({ path: `${path}.${k}`, key: k, value: v });
      else visit(v, `${path}.${k}`);
    }
  };
  visit(json, '$');
  return out;
}

// ---- generating variants -------------------------------------------------------------------------

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const spellings = (k: string) => [snake(k), k.toLowerCase(), k.charAt(0).toUpperCase() + k.slice(1), k.toUpperCase(), `${k} `, k.replace(/Id$/, 'ID')];
const FIELD_NAMES = [...LIB_FIELDS];
const ODD_NAMES = ['junk', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '$case', 'content', '', 'length', 'type', 'data', '0'];
const INT64 = ['00', '-0', '+1', '1e3', '1.0', '0', '0.0', ' 1', '0x10', '', '-1', '9007199254740993', '1152921504606846976', '9223372036854775808', 'NaN', 'Infinity'];
const INT64_NUMBERS = [0, -0, 1, -1, 1e3, 1.5, 2 ** 53 + 2, 2 ** 60, 1e21];
const VALUES: unknown[] = [
  '', 'x', 'AAAA', 'AQIDBA==', '=', 0, 1, '0', '1', -1, true, false, null, [], ['AAAA'], [''], [{}], [null], [[]], {}, { junk: 1 }, { junk: '' },
  { hint: '' }, { hint: 'h' }, { rawBytes: '' }, { rawBytes: 'AAAA' }, { payload: '' }, { keyId: 'AAAA' }, { '': '' }, [{ junk: 'MEGABYTES' }],
];

/** Every object (not array) in the value, with its path of keys. */
function objects(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [];
  const out = Array.isArray(v) ? [] : [at];
  for (const [k, c] of Object.entries(v)) out.push(...objects(c, [...at, Array.isArray(v) ? Number(k) : k]));
  return out;
}

function get(root: Json, path: (string | number)[]): Json {
  return path.reduce((o: Json, k) => o[k], root);
}

/** An object of the variant (a random depth) and one of its keys, when it has any. */
function someKey(r: Rng, json: Json): { o: Json; k: string } | undefined {
  const o = get(json, r.pick(objects(json)));
  const keys = Object.keys(o);
  return keys.length ? { o, k: r.pick(keys) } : undefined;
}

function mutate(r: Rng, json: Json): string {
  const kind = r.int(9);
  switch (kind) {
    case 0: { // a key added at a random depth
      const o = get(json, r.pick(objects(json)));
      const name = r.chance(0.5) ? r.pick(ODD_NAMES) : r.chance(0.5) ? r.pick(FIELD_NAMES) : r.pick(spellings(r.pick(FIELD_NAMES)));
      define(o, name, structuredClone(r.pick(VALUES)));
      return `add ${name}`;
    }
    case 1: { // a key respelled (the real one dropped, or both kept)
      const s = someKey(r, json);
      if (!s) return 'none';
      const alias = r.pick(spellings(s.k));
      define(s.o, alias, s.o[s.k]);
      if (r.chance(0.7)) delete s.o[s.k];
      return `respell ${s.k} ${alias}`;
    }
    case 2: { // the other arm of a oneof
      const donor = r.pick(fixtures);
      if (r.chance(0.5)) {
        const arm = r.pick(['messageSignature', 'dsseEnvelope']);
        define(json, arm, r.chance(0.6) && donor[arm] ? structuredClone(donor[arm]) : structuredClone(r.pick(VALUES)));
        return `oneof ${arm}`;
      }
      const vm = json.verificationMaterial as Json | undefined;
      if (!vm || typeof vm !== 'object') return 'none';
      const arm = r.pick(['publicKey', 'x509CertificateChain', 'certificate']);
      const donorVm = donor.verificationMaterial as Json;
      define(vm, arm, r.chance(0.6) && donorVm[arm] ? structuredClone(donorVm[arm]) : structuredClone(r.pick(VALUES)));
      return `oneof vm.${arm}`;
    }
    case 3: { // an int64 written another way
      const entries = objects(json).map((p) => get(json, p)).filter((o) => ['logIndex', 'integratedTime', 'treeSize'].some((k) => k in o));
      if (!entries.length) return 'none';
      const o = r.pick(entries);
      const k = r.pick(['logIndex', 'integratedTime', 'treeSize'].filter((f) => f in o));
      define(o, k, r.chance(0.7) ? r.pick(INT64) : r.pick(INT64_NUMBERS));
      return `int64 ${k}`;
    }
    case 4: { // a key removed
      const s = someKey(r, json);
      if (!s) return 'none';
      delete s.o[s.k];
      return `delete ${s.k}`;
    }
    case 5: { // a scalar wrapped
      const s = someKey(r, json);
      if (!s || typeof s.o[s.k] !== 'string') return 'none';
      const v = s.o[s.k] as string;
      define(s.o, s.k, r.pick([[v], [[v]], [v, ''], [{ junk: v }], { [v.slice(0, 8)]: v }, [v, { junk: 'x' }]]));
      return `wrap ${s.k}`;
    }
    case 6: { // bytes written as an array or a Buffer-like object
      const s = someKey(r, json);
      if (!s || typeof s.o[s.k] !== 'string') return 'none';
      const bytes = [...Buffer.from(s.o[s.k] as string, 'base64').subarray(0, 64)];
      define(s.o, s.k, r.pick([bytes, { type: 'Buffer', data: bytes }, { type: 'Buffer', data: bytes, junk: 'x' }, { ...bytes, length: bytes.length }, { length: 0, junk: 'x' }]));
      return `bytes ${s.k}`;
    }
    case 7: { // a value replaced (defaults among them)
      const s = someKey(r, json);
      if (!s) return 'none';
      define(s.o, s.k, structuredClone(r.pick(VALUES)));
      return `replace ${s.k}`;
    }
    default: { // junk inside a message written as an object in a string field
      const s = someKey(r, json);
      if (!s) return 'none';
      define(s.o, s.k, r.pick([{ junk: s.o[s.k] }, { hint: '' }, { [s.k]: s.o[s.k] }]));
      return `objectify ${s.k}`;
    }
  }
}

describe('strict bundle parse vs the library (protobuf-specs fromJSON/toJSON)', () => {
  it('the fixtures: every key is read', () => {
    for (const f of fixtures) expect(ignoredKeys(f)).toEqual([]);
  });

  it('the oracle finds what it should (so it can fail): an added unknown key, a second oneof arm, a snake_case alias', () => {
    const f = structuredClone(fixtures[0]);
    define(f.verificationMaterial.tlogEntries[0], 'junk', 'x');
    define(f.dsseEnvelope, 'payload_type', 'x');
    const paths = (j: Json) => ignoredKeys(JSON.parse(JSON.stringify(j))).map((e) => e.path).sort();
    expect(paths(f)).toEqual(['$.dsseEnvelope.payload_type', '$.verificationMaterial.tlogEntries[0].junk']);
    // A message signature wins the oneof: the whole DSSE envelope it shadows is ignored.
    define(f, 'messageSignature', { junk: 1 });
    expect(paths(f)).toEqual(['$.dsseEnvelope', '$.messageSignature.junk', '$.verificationMaterial.tlogEntries[0].junk']);
    // An own `__proto__` key (JSON.parse makes one) is ignored like any other.
    expect(paths(JSON.parse('{"__proto__":{"mediaType":"x"},' + JSON.stringify(fixtures[1]).slice(1)))).toEqual(['$.__proto__']);
  });

  it('never "all written" when the library ignores a key; the strict parse refuses every ignored non-default key (seeded variants)', () => {
    const r = rng(0x5157);
    const wrong: string[] = [];
    let variants = 0;
    let parsed = 0;
    let short = 0;
    let withIgnored = 0;
    let refused = 0;
    let allowedDefaults = 0;
    const started = process.cpuUsage();
    while (variants < 1200) {
      variants++;
      const base = structuredClone(r.pick(fixtures));
      const steps: string[] = [];
      for (let n = 1 + r.int(3); n > 0; n--) steps.push(mutate(r, base));
      // Through JSON text, as a bundle arrives: `__proto__` and the like are own keys after JSON.parse.
      const text = JSON.stringify(base);
      const json = JSON.parse(text) as Json;
      let b: Bundle;
      try {
        b = bundleFromJSON(json);
      } catch {
        continue;
      }
      parsed++;
      const ignored = ignoredKeys(json);
      const mustRefuse = ignored.filter((e) => !(LIB_FIELDS.has(e.key) && isDefault(e.value)));
      if (ignored.length) withIgnored++;
      if (ignored.length && !mustRefuse.length) allowedDefaults++;
      const fast = bundleKeysAllWritten(JSON.parse(text), b);
      if (fast) short++;
      if (fast && ignored.length) wrong.push(`all written, but ignored ${ignored.map((e) => e.path).join(', ')} after ${steps.join('; ')}`);
      let accepted = true;
      try {
        strictBundleFromJSON(JSON.parse(text));
      } catch {
        accepted = false;
        refused++;
      }
      if (accepted && mustRefuse.length) wrong.push(`accepted, but ignored ${mustRefuse.map((e) => `${e.path}=${JSON.stringify(e.value).slice(0, 40)}`).join(', ')} after ${steps.join('; ')}`);
    }
    const cpuMs = (process.cpuUsage(started).user + process.cpuUsage(started).system) / 1000;
    expect(wrong).toEqual([]);
    // Each outcome occurred often enough for the comparison to mean something.
    expect({ parsed: parsed > 500, short: short > 50, withIgnored: withIgnored > 150, refused: refused > 150, allowedDefaults: allowedDefaults > 5 })
      .toEqual({ parsed: true, short: true, withIgnored: true, refused: true, allowedDefaults: true });
    expect(cpuMs).toBeLessThan(20_000);
    console.log(`shape differential: ${variants} variants, ${parsed} parsed, ${short} all written, ${withIgnored} with an ignored key, ${refused} refused, ${allowedDefaults} only defaults ignored; ${cpuMs.toFixed(0)} ms CPU`);
  });
});
