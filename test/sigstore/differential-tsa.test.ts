/**
 * The hand-written RFC 3161 reader (src/verify/sigstore/tsa-token.ts) against @sigstore/core's
 * RFC3161Timestamp (the copy @sigstore/verify uses), field by field, on structural mutations of a
 * real token from the mock TSA (seeded): several bytes changed to random values, tag bytes swapped,
 * length bytes moved by ±1 or rewritten in long form, truncations, bytes inserted, removed and
 * appended; and (half of them) structural edits re-encoded as canonical DER: an element removed,
 * doubled, swapped with a sibling, moved elsewhere, or given another primitive's content. The
 * edits are seeded; the token itself is minted afresh by the mock on each run, so the counts move a
 * little from run to run (the assertions hold for any token the mock TSA writes). For each mutant the reader either refuses (null: the bundle takes the library's path)
 * or reads every field core's getters and verify() read, as core reads it (none of those getters
 * may throw), and tsaTokenVerifies answers as core's verify(). test/sigstore/fast-path.test.ts
 * flips each byte by 0x01 and compares only the Verifier's verdict; this compares the fields.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { X509Certificate } from '@sigstore/core';
import { RFC3161Timestamp } from '../../node_modules/@sigstore/verify/node_modules/@sigstore/core/dist/rfc3161/index.js';
import { parseTsaToken, tsaTokenVerifies, type TsaToken } from '../../src/verify/sigstore/tsa-token.js';
import { encodeLength, readNode } from '../../src/verify/sigstore/der.js';
import { signAttestationForCtp } from '../../src/sign/index.js';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { artifactDigest, keylessOptions, statementFor } from './fixtures.js';
import { rng, type Rng } from './prng.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let m: SigstoreMock;
let token: Buffer;
let data: Buffer;
let key: KeyObject;

beforeAll(async () => {
  m = await startSigstoreMock();
  const dsse = (await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()))) as Json;
  const b = bundleFromJSON(dsse);
  token = Buffer.from(b.verificationMaterial.timestampVerificationData?.rfc3161Timestamps[0].signedTimestamp ?? []);
  if (b.content.$case !== 'dsseEnvelope') throw new Error('not DSSE');
  // What a DSSE bundle's token timestamps: the envelope's signature.
  data = b.content.dsseEnvelope.signatures[0].sig;
  const tsaCert = (m.trustedRoot as Json).timestampAuthorities[0].certChain.certificates[0].rawBytes as string;
  key = createPublicKey({ key: X509Certificate.parse(Buffer.from(tsaCert, 'base64')).publicKey, format: 'der', type: 'spki' });
});
afterAll(async () => { await m.close(); });

/** The internals core's verify() reads (private in its typings). */
interface CoreInternals {
  signedAttrsObj: { toDER(): Buffer };
  messageDigestAttributeObj: { subs: { subs: { value: Buffer }[] }[] } | undefined;
}

/** What core reads of a token, getter by getter, as tsa-token.ts keeps it; a getter that throws makes the whole read throw. */
function coreFields(bytes: Buffer): Record<keyof TsaToken, unknown> {
  // core's typings want an ArrayBuffer-backed Buffer (the bytes are copied into one).
  const t = RFC3161Timestamp.parse(Buffer.from(bytes) as Buffer<ArrayBuffer>);
  const internals = t as unknown as CoreInternals;
  const md = internals.messageDigestAttributeObj;
  return {
    signingTime: t.signingTime.getTime(),
    signerIssuer: t.signerIssuer.toString('hex'),
    signerSerialNumber: t.signerSerialNumber.toString('hex'),
    contentType: t.contentType,
    eContentType: t.eContentType,
    imprintAlgorithm: t.tstInfo.messageImprintHashAlgorithm,
    imprint: t.tstInfo.messageImprintHashedMessage.toString('hex'),
    tstInfo: t.tstInfo.raw.toString('hex'),
    digestAlgorithm: t.signerDigestAlgorithm,
    messageDigest: md ? md.subs[1].subs[0].value.toString('hex') : undefined,
    signedAttrs: internals.signedAttrsObj.toDER().toString('hex'),
    signatureAlgorithm: t.signatureAlgorithm,
    signatureValue: t.signatureValue.toString('hex'),
  };
}

function ourFields(t: TsaToken): Record<keyof TsaToken, unknown> {
  return {
    signingTime: t.signingTime.getTime(),
    signerIssuer: t.signerIssuer.toString('hex'),
    signerSerialNumber: t.signerSerialNumber.toString('hex'),
    contentType: t.contentType,
    eContentType: t.eContentType,
    imprintAlgorithm: t.imprintAlgorithm,
    imprint: t.imprint.toString('hex'),
    tstInfo: t.tstInfo.toString('hex'),
    digestAlgorithm: t.digestAlgorithm,
    messageDigest: t.messageDigest?.toString('hex'),
    signedAttrs: t.signedAttrs.toString('hex'),
    signatureAlgorithm: t.signatureAlgorithm,
    signatureValue: t.signatureValue.toString('hex'),
  };
}

function coreVerifies(bytes: Buffer): boolean {
  try {
    RFC3161Timestamp.parse(Buffer.from(bytes) as Buffer<ArrayBuffer>).verify(data, key);
    return true;
  } catch {
    return false;
  }
}

/** The start of every TLV header in the token (walking constructed elements and OCTET STRINGs that hold DER). */
function headers(b: Buffer): number[] {
  const out: number[] = [];
  const walk = (from: number, to: number, depth: number) => {
    let p = from;
    while (p < to && depth < 40) {
      const n = readNode(b, p, to);
      if (!n) return;
      out.push(n.start);
      if ((n.tag & 0x20) !== 0 || n.tag === 0x04) walk(n.content, n.end, depth + 1);
      p = n.end;
    }
  };
  walk(0, b.length, 0);
  return out;
}

/** The token as a tree (constructed elements and OCTET STRINGs holding DER have children), to edit its structure and re-encode it as canonical DER. */
interface Node {
  tag: number;
  kids?: Node[];
  content?: Buffer;
}

function toTree(b: Buffer, from: number, to: number): Node[] | null {
  const out: Node[] = [];
  let p = from;
  while (p < to) {
    const n = readNode(b, p, to);
    if (!n) return null;
    const kids = (n.tag & 0x20) !== 0 || n.tag === 0x04 ? toTree(b, n.content, n.end) : null;
    out.push(kids && (kids.length || n.tag !== 0x04) ? { tag: n.tag, kids } : { tag: n.tag, content: b.subarray(n.content, n.end) });
    p = n.end;
  }
  return out;
}

function encode(n: Node): Buffer {
  const content = n.kids ? Buffer.concat(n.kids.map(encode)) : (n.content as Buffer);
  return Buffer.concat([Buffer.from([n.tag]), encodeLength(content.length), content]);
}

function allNodes(n: Node, out: Node[] = []): Node[] {
  out.push(n);
  for (const k of n.kids ?? []) allNodes(k, out);
  return out;
}

/** One structural edit, re-encoded with minimal lengths: an element removed, doubled, swapped with a sibling, moved, or its content taken from another primitive. */
function restructured(r: Rng, src: Buffer): { what: string; bytes: Buffer } {
  const root = (toTree(src, 0, src.length) as Node[])[0];
  const nodes = allNodes(root);
  const parents = nodes.filter((n) => n.kids && n.kids.length);
  const p = r.pick(parents);
  const kids = p.kids as Node[];
  const i = r.int(kids.length);
  let what: string;
  switch (r.int(5)) {
    case 0:
      kids.splice(i, 1);
      what = 'element removed';
      break;
    case 1:
      kids.splice(i, 0, structuredClone(kids[i]));
      what = 'element doubled';
      break;
    case 2: {
      const j = r.int(kids.length);
      [kids[i], kids[j]] = [kids[j], kids[i]];
      what = 'elements swapped';
      break;
    }
    case 3: {
      const [moved] = kids.splice(i, 1);
      const to = r.pick(parents);
      (to.kids as Node[]).splice(r.int((to.kids as Node[]).length + 1), 0, moved);
      what = 'element moved';
      break;
    }
    default: {
      const prims = nodes.filter((n) => n.content);
      const a = r.pick(prims);
      const b = r.pick(prims);
      a.content = Buffer.from(b.content as Buffer);
      what = `content of a ${a.tag.toString(16)} taken from a ${b.tag.toString(16)}`;
    }
  }
  return { what, bytes: encode(root) };
}

const TAGS = [0x30, 0x31, 0x04, 0x02, 0x06, 0x18, 0x17, 0xa0, 0xa1, 0x80, 0x03, 0x05, 0x0c, 0x13];

function mutant(r: Rng, src: Buffer, heads: number[]): { what: string; bytes: Buffer } {
  const b = Buffer.from(src);
  switch (r.int(7)) {
    case 0: { // one to three bytes set to random values
      const at: number[] = [];
      for (let n = 1 + r.int(3); n > 0; n--) {
        const i = r.int(b.length);
        b[i] = r.int(256);
        at.push(i);
      }
      return { what: `bytes ${at.join(',')}`, bytes: b };
    }
    case 1: { // a tag swapped
      const h = r.pick(heads);
      b[h] = r.pick(TAGS);
      return { what: `tag at ${h} = ${b[h].toString(16)}`, bytes: b };
    }
    case 2: { // a (short-form) length moved by one
      const h = r.pick(heads);
      if (b[h + 1] >= 0x80) return { what: 'skip', bytes: src };
      b[h + 1] = (b[h + 1] + (r.chance(0.5) ? 1 : 0xff)) & 0x7f;
      return { what: `length at ${h + 1}`, bytes: b };
    }
    case 3: { // a short-form length written in long form (non-minimal), or a long form's bytes changed
      const h = r.pick(heads);
      if (b[h + 1] < 0x80) return { what: `long form at ${h + 1}`, bytes: Buffer.concat([b.subarray(0, h + 1), Buffer.from([0x81]), b.subarray(h + 1)]) };
      b[h + 2] ^= 1 << r.int(8);
      return { what: `long length at ${h + 2}`, bytes: b };
    }
    case 4: // truncated
      return { what: 'truncated', bytes: b.subarray(0, r.int(b.length)) };
    case 5: { // a byte inserted or removed
      const i = r.int(b.length);
      return r.chance(0.5)
        ? { what: `insert at ${i}`, bytes: Buffer.concat([b.subarray(0, i), Buffer.from([r.int(256)]), b.subarray(i)]) }
        : { what: `remove at ${i}`, bytes: Buffer.concat([b.subarray(0, i), b.subarray(i + 1)]) };
    }
    default: // bytes appended
      return { what: 'appended', bytes: Buffer.concat([b, Buffer.from(Array.from({ length: 1 + r.int(4) }, () => r.int(256)))]) };
  }
}

describe('tsa-token.ts vs @sigstore/core RFC3161Timestamp', () => {
  it('reads the real token as core does, and both verify it', () => {
    const ours = parseTsaToken(token);
    expect(ours).not.toBeNull();
    expect(ourFields(ours as TsaToken)).toEqual(coreFields(token));
    expect(tsaTokenVerifies(ours as TsaToken, data, key)).toBe(true);
    expect(coreVerifies(token)).toBe(true);
  });

  it('on 4,000 mutated tokens: refuses, or reads every field core reads and verifies as core verifies', () => {
    const r = rng(0x3161);
    const heads = headers(token);
    expect(heads.length).toBeGreaterThan(50);
    const wrong: string[] = [];
    let tried = 0;
    let read = 0;
    let refused = 0;
    let coreReadRefused = 0;
    let verified = 0;
    for (let i = 0; i < 4000; i++) {
      const { what, bytes } = i % 2 ? restructured(r, token) : mutant(r, token, heads);
      if (what === 'skip') continue;
      tried++;
      const ours = parseTsaToken(bytes);
      let core: Record<keyof TsaToken, unknown> | undefined;
      try {
        core = coreFields(bytes);
      } catch {
        core = undefined;
      }
      if (!ours) {
        refused++;
        if (core) coreReadRefused++;
        continue;
      }
      read++;
      if (!core) {
        wrong.push(`${what}: read here, but a core getter throws`);
        continue;
      }
      const mine = ourFields(ours);
      const differ = (Object.keys(mine) as (keyof TsaToken)[]).filter((k) => mine[k] !== core[k] && !(Number.isNaN(mine[k]) && Number.isNaN(core[k])));
      if (differ.length) wrong.push(`${what}: ${differ.map((k) => `${k} ${String(mine[k]).slice(0, 40)} vs ${String(core[k]).slice(0, 40)}`).join('; ')}`);
      const v = tsaTokenVerifies(ours, data, key);
      if (v) verified++;
      if (v !== coreVerifies(bytes)) wrong.push(`${what}: verifies ${v} here, ${!v} in core`);
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    // Each outcome occurred often enough for the comparison to mean something.
    expect({ read: read > 300, refused: refused > 300, coreReadRefused: coreReadRefused > 20 }).toEqual({ read: true, refused: true, coreReadRefused: true });
    console.log(`tsa differential: ${tried} mutants, ${read} read (fields compared), ${verified} of them verify, ${refused} refused (${coreReadRefused} of which core reads)`);
  });
});
