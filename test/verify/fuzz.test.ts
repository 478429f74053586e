/**
 * Seeded fuzzing of the verifier (library, not CLI, for speed): single-byte mutations and
 * truncations of a signed .ctp and of its bundle.json. None may be accepted, nothing but a
 * CtError-derived rejection may come out, and every rejection carries a code.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { verifyVcsBundle } from '../../src/verify/vcs/verify-bundle.js';
import { openCtp } from '../../src/bundle/read.js';
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
});
