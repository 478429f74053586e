/**
 * Seeded fuzzing of the verifier (library, not CLI, for speed): single-byte mutations and
 * truncations of a signed .ctp and of its bundle.json. None may be accepted, nothing but a
 * CtError-derived rejection may come out, and every rejection carries a code.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fc from 'fast-check';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { verifyVcsBundle } from '../../src/verify/vcs/verify-bundle.js';
import { openCtp } from '../../src/bundle/read.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { CODES } from '../../src/core/codes.js';
import type { VerificationReport } from '../../src/verify/report.js';
import { makeKey, makeStore, MemLog, trustOf } from './fixtures.js';
import { signCtpInMemory, tempDir, writeUnsignedCtp } from './ctp-fixtures.js';

/** mulberry32: a tiny seeded PRNG, so a failure can be replayed from its seed and index. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Mutation {
  what: string;
  bytes: Buffer;
}

function mutations(src: Buffer, n: number, seed: number): Mutation[] {
  const rnd = prng(seed);
  const out: Mutation[] = [];
  for (let i = 0; i < n; i++) {
    if (i % 10 === 9) {
      const len = Math.floor(rnd() * src.length);
      out.push({ what: `truncate to ${len}`, bytes: src.subarray(0, len) });
      continue;
    }
    const pos = Math.floor(rnd() * src.length);
    let v = Math.floor(rnd() * 256);
    if (v === src[pos]) v = (v + 1) & 0xff;
    const b = Buffer.from(src);
    b[pos] = v;
    out.push({ what: `byte ${pos}: 0x${src[pos].toString(16)} → 0x${v.toString(16)}`, bytes: b });
  }
  return out;
}

const KNOWN_CODES = new Set(Object.keys(CODES));
const signer = makeKey();
const logA = new MemLog('log-a', 'Operator A');
const logB = new MemLog('log-b', 'Operator B');
const trust = trustOf(makeStore({ signers: [{ key: signer }], logs: [logA, logB] }));
let tmp: { dir: string; cleanup: () => Promise<void> };
let ctp: Buffer;
let bundleJson: Buffer;
let imageDigest: string;

beforeAll(async () => {
  tmp = await tempDir('ct-fuzz-');
  await writeUnsignedCtp(join(tmp.dir, 'u.ctp'));
  await signCtpInMemory(join(tmp.dir, 'u.ctp'), join(tmp.dir, 's.ctp'), signer, [logA, logB]);
  ctp = await readFile(join(tmp.dir, 's.ctp'));
  const a = await openCtp(ctp);
  bundleJson = a.file('attestations/bundle.json');
  imageDigest = a.manifest.image_digest;
});
afterAll(async () => tmp.cleanup());

function checkRejected(r: VerificationReport, what: string, failures: string[]): void {
  if (r.decision !== 'REJECT') failures.push(`${what}: ACCEPTED`);
  else if (!r.code || !KNOWN_CODES.has(r.code)) failures.push(`${what}: rejected without a known code (${String(r.code)})`);
}

describe('fuzz (seeded)', () => {
  it('the unmutated inputs verify (so rejections below are caused by the mutations)', async () => {
    expect((await verifyCtp(ctp, { trust })).decision).toBe('ALLOW');
    expect(verifyVcsBundle(bundleJson, { trust, imageDigest }).decision).toBe('ALLOW');
  });

  it('1,500 mutations of a signed .ctp: none accepted, all rejected with a code, nothing thrown', async () => {
    const failures: string[] = [];
    for (const m of mutations(ctp, 1500, 0xc7f00d)) {
      try {
        checkRejected(await verifyCtp(m.bytes, { trust }), m.what, failures);
      } catch (e) {
        failures.push(`${m.what}: threw ${(e as Error)?.name} ${(e as Error)?.message}`);
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('1,500 mutations of bundle.json: none accepted, all rejected with a code, nothing thrown', () => {
    const failures: string[] = [];
    for (const m of mutations(bundleJson, 1500, 0xb0a710)) {
      try {
        checkRejected(verifyVcsBundle(m.bytes, { trust, imageDigest }), m.what, failures);
      } catch (e) {
        failures.push(`${m.what}: threw ${(e as Error)?.name} ${(e as Error)?.message}`);
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);

  it('unsigned bytes under attestations/ (#13 finding 5): a key bundle.json does not define at any object, or a file no verifier reads, is refused', async () => {
    const doc = JSON.parse(bundleJson.toString('utf8')) as unknown;
    const objects: string[] = []; // JSON pointers of every object in bundle.json
    const walk = (v: unknown, at: string): void => {
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${at}/${i}`));
      else if (v && typeof v === 'object') {
        objects.push(at);
        for (const [k, x] of Object.entries(v)) walk(x, `${at}/${k}`);
      }
    };
    walk(doc, '');
    const name = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'note', 'Signatures', 'payloadtype'), fc.string({ minLength: 1, maxLength: 10 }));
    let i = 0;
    await fc.assert(
      fc.asyncProperty(fc.oneof(
        fc.record({ kind: fc.constant('key' as const), at: fc.constantFrom(...objects), key: name, value: fc.jsonValue({ maxDepth: 2 }) }),
        fc.record({ kind: fc.constant('file' as const), file: fc.stringMatching(/^[a-z0-9._-]{1,12}$/).filter((f) => f !== 'bundle.json' && f !== 'vcs-log-entries.json' && f !== '.' && f !== '..'), data: fc.string({ maxLength: 40 }) }),
      ), async (m) => {
        const out = join(tmp.dir, `att-${i++}.ctp`);
        if (m.kind === 'key') {
          // Inserted as text, so that __proto__ is an own key of the file as an attacker writes it.
          const target = m.at.split('/').slice(1).reduce<any>((o, p) => o[p], doc); // eslint-disable-line @typescript-eslint/no-explicit-any
          const known = Object.keys(target).includes(m.key);
          const text = JSON.stringify(doc).replace(JSON.stringify(target), JSON.stringify(target).replace(/^\{/, `{${JSON.stringify(m.key)}:${JSON.stringify(m.value ?? null)},`));
          if (known) return; // a duplicate key is another class (JSON.parse keeps the last)
          await rewriteCtp(join(tmp.dir, 's.ctp'), out, { add: { 'attestations/bundle.json': Buffer.from(text) } });
        } else {
          await rewriteCtp(join(tmp.dir, 's.ctp'), out, { add: { [`attestations/${m.file}`]: Buffer.from(m.data) } });
        }
        const r = await verifyCtp(await readFile(out), { trust });
        expect({ m, decision: r.decision, code: r.code }).toEqual({ m, decision: 'REJECT', code: m.kind === 'key' ? 'MALFORMED_BUNDLE' : m.file.endsWith('.sigstore.json') ? 'MALFORMED_BUNDLE' : 'UNSIGNED_CONTENT' });
      }),
      { seed: 0x13_0005, numRuns: 120 },
    );
  }, 60_000);
});
