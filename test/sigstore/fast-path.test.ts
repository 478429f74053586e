/**
 * The fast path (src/verify/sigstore/fast-path.ts) only accepts what @sigstore/verify accepts: it is
 * run side by side with the unmodified Verifier on good bundles (it must take them: that is its
 * point) and on every single-byte change of the signing certificate, the TSA token, the SET, the
 * signature and the payload (it must refuse each one the Verifier refuses). The raw-DER helpers are
 * compared with what @sigstore/core re-encodes.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash, sign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { signatureContent } from '@sigstore/verify/dist/bundle/index.js';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signAttestationForCtp, signMessage, type SerializedBundle } from '../../src/sign/index.js';
import { FastPath } from '../../src/verify/sigstore/fast-path.js';
import { memoizeCertificate } from '../../src/verify/sigstore/cert-memo.js';
import { certLayout, children, encodeLength, isCanonicalDer, tbsWithoutExtension } from '../../src/verify/sigstore/der.js';
import { certIdentity, derString, identityOf } from '../../src/verify/sigstore/identity.js';
import { ASN1Obj } from '@sigstore/core';
import { publicGoodSeed } from '../../src/verify/sigstore/index.js';
import { artifact, artifactDigest, GH_ISSUER, GH_SAN, keylessOptions, rootOf, samplesDir, statementFor } from './fixtures.js';
import { SigstoreBundleVerifier, type SigstoreVerifyRequest } from '../../src/verify/sigstore/verifier.js';
import { sha256Digest } from '../../src/core/digest.js';
import type { CtError } from '../../src/core/errors.js';

const SAMPLES = samplesDir();

let m: SigstoreMock;
let dsse: SerializedBundle;
let message: SerializedBundle;

beforeAll(async () => {
  m = await startSigstoreMock();
  dsse = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()));
  message = await signMessage(artifact, keylessOptions(m, await m.githubToken()));
});
afterAll(async () => { await m.close(); });

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function paths(root: Json) {
  const trust = toTrustMaterial(TrustedRoot.fromJSON(root));
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
  return { verifier, fast: new FastPath(trust, verifier) };
}

function leafOf(b: Bundle): Uint8Array {
  const c = b.verificationMaterial.content;
  if (c.$case === 'certificate') return c.certificate.rawBytes;
  if (c.$case === 'x509CertificateChain') return c.x509CertificateChain.certificates[0].rawBytes;
  throw new Error('no certificate');
}

const NO_THRESHOLDS = { tlog: 0, ctlog: 0, timestamps: 0 };

/**
 * Both verdicts on one bundle JSON (the Verifier's only when `always` or the fast path accepted):
 * null when it is not a bundle at all. A bundle whose material @sigstore/core does not parse is a
 * rejection of the library's, which the fast path must share.
 */
function verdicts(p: ReturnType<typeof paths>, json: Json, artifactBytes?: Buffer, always = true): { slow: boolean | null; fast: boolean } | null {
  let b: Bundle;
  try {
    b = bundleFromJSON(json);
  } catch {
    return null;
  }
  const leaf = p.fast.verify(b, signatureContent(b, artifactBytes), NO_THRESHOLDS);
  const fast = leaf !== null;
  if (!always && !fast) return { slow: null, fast };
  let slow = true;
  try {
    const entity = toSignedEntity(b, artifactBytes);
    p.verifier.verify(entity);
    // What the signer is, read from the raw bytes, must be what @sigstore/core reads.
    if (leaf && entity.key.$case === 'certificate') {
      expect(identityOf(leaf.san, (oid) => leaf.extensions.find((e) => e.oid === oid)?.value)).toEqual(certIdentity(entity.key.certificate));
    }
  } catch (e) {
    if ((e as { matcherResult?: unknown }).matcherResult) throw e;
    slow = false;
  }
  return { slow, fast };
}

/** Base64 fields flip a bit of the decoded bytes; text fields (checkpoint, types, numbers) of their UTF-8. */
const TEXT_FIELDS = new Set(['envelope', 'payloadType', 'integratedTime', 'logIndex', 'treeSize']);

function fieldBytes(json: Json, path: string[]): Buffer {
  let o: Json = json;
  for (const k of path) o = o[k];
  return Buffer.from(o as unknown as string, TEXT_FIELDS.has(path[path.length - 1]) ? 'utf8' : 'base64');
}

function withField(json: Json, path: string[], bytes: Buffer): Json {
  const copy = JSON.parse(JSON.stringify(json)) as Json;
  let o = copy;
  for (const k of path.slice(0, -1)) o = o[k];
  const last = path[path.length - 1];
  o[last] = bytes.toString(TEXT_FIELDS.has(last) ? 'utf8' : 'base64');
  return copy;
}

function flipped(json: Json, path: string[], i: number): Json {
  const bytes = fieldBytes(json, path);
  bytes[i] ^= 0x01;
  return withField(json, path, bytes);
}

describe('fast path ⊆ @sigstore/verify', () => {
  it('takes good keyless DSSE and message-signature bundles (mock Sigstore) and the public-good samples', () => {
    const p = paths(m.trustedRoot);
    expect(verdicts(p, dsse as Json)).toEqual({ slow: true, fast: true });
    expect(verdicts(p, message as Json, artifact)).toEqual({ slow: true, fast: true });
    // Real Fulcio: P-384 intermediate → root, leaf issued by the intermediate.
    const pg = paths(JSON.parse(publicGoodSeed().trustedRoot.toString('utf8')));
    const a = readFileSync(join(SAMPLES, 'a.txt'));
    expect(verdicts(pg, JSON.parse(readFileSync(join(SAMPLES, 'happy-path-v0.3', 'bundle.sigstore.json'), 'utf8')), a)).toEqual({ slow: true, fast: true });
    expect(verdicts(pg, JSON.parse(readFileSync(join(SAMPLES, 'happy-path-intoto-in-dsse-v3', 'bundle.sigstore.json'), 'utf8')))).toEqual({ slow: true, fast: true });
    // A foreign root: neither accepts.
    expect(verdicts(paths(m.trustedRoot), JSON.parse(readFileSync(join(SAMPLES, 'happy-path-v0.3', 'bundle.sigstore.json'), 'utf8')), a)).toEqual({ slow: false, fast: false });
  });

  it('refuses every single-byte change the Verifier refuses (certificate, TSA token, SET, proof, checkpoint, log entry, signature, payload)', () => {
    const p = paths(m.trustedRoot);
    const json = dsse as Json;
    const fields: string[][] = [
      ['verificationMaterial', 'certificate', 'rawBytes'],
      ['verificationMaterial', 'timestampVerificationData', 'rfc3161Timestamps', '0', 'signedTimestamp'],
      ['verificationMaterial', 'tlogEntries', '0', 'inclusionPromise', 'signedEntryTimestamp'],
      ['verificationMaterial', 'tlogEntries', '0', 'inclusionProof', 'rootHash'],
      ['verificationMaterial', 'tlogEntries', '0', 'canonicalizedBody'],
      ['verificationMaterial', 'tlogEntries', '0', 'inclusionProof', 'checkpoint', 'envelope'],
      ['verificationMaterial', 'tlogEntries', '0', 'inclusionProof', 'treeSize'],
      ['verificationMaterial', 'tlogEntries', '0', 'logId', 'keyId'],
      ['verificationMaterial', 'tlogEntries', '0', 'integratedTime'],
      ['verificationMaterial', 'tlogEntries', '0', 'logIndex'],
      ['dsseEnvelope', 'signatures', '0', 'sig'],
      ['dsseEnvelope', 'payload'],
      ['dsseEnvelope', 'payloadType'],
    ];
    let tried = 0;
    let fastTaken = 0;
    const wrong: string[] = [];
    for (const f of fields) {
      const n = fieldBytes(json, f).length;
      for (let i = 0; i < n; i++) {
        const v = verdicts(p, flipped(json, f, i), undefined, false);
        if (!v) continue;
        tried++;
        if (v.fast) fastTaken++;
        if (v.fast && !v.slow) wrong.push(`${f.join('.')}[${i}]`);
      }
    }
    expect(wrong).toEqual([]);
    expect(tried).toBeGreaterThan(1500);
    // Most changes break a signature; the few the fast path takes were all accepted by the Verifier too.
    expect(fastTaken).toBeLessThan(tried / 4);
  });
});

const tlv = (tag: number, ...content: Buffer[]): Buffer => {
  const c = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(c.length), c]);
};
const hex = (h: string) => Buffer.from(h.replace(/ /g, ''), 'hex');
const OID_SCT_DER = hex('2b06010401d679020402');
const ext = (oidBytes: Buffer, value: Buffer, critical = false) => tlv(0x30, tlv(0x06, oidBytes), ...(critical ? [hex('0101ff')] : []), tlv(0x04, value));
const sanUri = (uri: string, oidBytes = hex('551d11')) => ext(oidBytes, tlv(0x30, tlv(0x86, Buffer.from(uri))));

interface Forgery {
  /** The extensions in order; 'SCT' is where the SCT extension goes (its SCTs sign the others). */
  exts: (Buffer | 'SCT')[];
  sctCopies?: number;
  sctOid?: Buffer;
  sctCritical?: boolean;
  sctHash?: number;
  /** Bytes after the SCT list inside its OCTET STRING, and after the certificate. */
  sctTrailer?: Buffer;
  certTrailer?: Buffer;
}

/**
 * The leaf re-issued with other extensions: SCTs signed by the mock CT log over the new
 * pre-certificate, the TBS signed by the mock CA. The key is the leaf's, so the DSSE signature,
 * the TSA token and the log entry still hold: only the certificate's structure changes.
 */
function forge(der: Buffer, f: Forgery): Buffer {
  const layout = certLayout(der);
  if (!layout?.extensions) throw new Error('no extensions');
  const wrapperStart = layout.extensions.wrapper.start;
  const fields = children(der, layout.tbs.content, layout.tbs.end) ?? [];
  const tbsOf = (exts: Buffer[]) => tlv(0x30, ...fields.map((n) => (n.start === wrapperStart ? tlv(0xa3, tlv(0x30, ...exts)) : der.subarray(n.start, n.end))));
  const pre = tbsOf(f.exts.filter((e): e is Buffer => e !== 'SCT'));
  const issuerKeyHash = createHash('sha256').update(m.caKeys.publicKey.export({ type: 'spki', format: 'der' })).digest();
  const logID = Buffer.from((m.trustedRoot as Json).ctlogs[0].logId.keyId as string, 'base64');
  const ts = Buffer.alloc(8);
  ts.writeBigInt64BE(BigInt(Date.now()));
  const len = Buffer.from([(pre.length >> 16) & 0xff, (pre.length >> 8) & 0xff, pre.length & 0xff]);
  const sig = sign('sha256', Buffer.concat([hex('0000'), ts, hex('0001'), issuerKeyHash, len, pre, hex('0000')]), m.ctKeys.privateKey);
  const sigLen = Buffer.alloc(2);
  sigLen.writeUInt16BE(sig.length);
  const sct = Buffer.concat([hex('00'), logID, ts, hex('0000'), Buffer.from([f.sctHash ?? 4, 3]), sigLen, sig]);
  const one = Buffer.concat([Buffer.from([sct.length >> 8, sct.length & 0xff]), sct]);
  const items = Buffer.concat(Array(f.sctCopies ?? 1).fill(one));
  const list = Buffer.concat([Buffer.from([items.length >> 8, items.length & 0xff]), items, f.sctTrailer ?? Buffer.alloc(0)]);
  const sctExt = ext(f.sctOid ?? OID_SCT_DER, tlv(0x04, list), f.sctCritical);
  const tbs = tbsOf(f.exts.map((e) => (e === 'SCT' ? sctExt : e)));
  const top = children(der, 0, der.length)?.[0];
  const parts = top ? children(der, top.content, top.end) ?? [] : [];
  const alg = der.subarray(parts[1].start, parts[1].end);
  const hash = alg.includes(hex('2a8648ce3d040303')) ? 'sha384' : 'sha256';
  const signature = sign(hash, tbs, m.caKeys.privateKey);
  return Buffer.concat([tlv(0x30, tbs, alg, tlv(0x03, hex('00'), signature)), f.certTrailer ?? Buffer.alloc(0)]);
}

describe('fast path ⊆ @sigstore/verify on re-issued certificates (structure, not bytes)', () => {
  it('decides each structural change as the Verifier does, or leaves it to the Verifier', () => {
    const p = paths(m.trustedRoot);
    const json = dsse as Json;
    const certPath = ['verificationMaterial', 'certificate', 'rawBytes'];
    const der = fieldBytes(json, certPath);
    const layout = certLayout(der);
    const items = (layout?.extensions?.items ?? []).map((n) => der.subarray(n.start, n.end));
    const oidOfItem = (item: Buffer) => {
      const first = children(item, 2 + (item[1] & 0x80 ? item[1] & 0x7f : 0), item.length)?.[0];
      return first ? item.subarray(first.content, first.end).toString('hex') : '';
    };
    const orig: (Buffer | 'SCT')[] = items.map((i) => (oidOfItem(i) === OID_SCT_DER.toString('hex') ? 'SCT' : i));
    expect(orig.filter((e) => e === 'SCT')).toHaveLength(1);
    const isSan = (e: Buffer | 'SCT') => e !== 'SCT' && oidOfItem(e) === '551d11';
    const isSki = (e: Buffer | 'SCT') => e !== 'SCT' && oidOfItem(e) === '551d0e';
    const ski = orig.find(isSki) as Buffer;
    const skiValue = children(ski, 2, ski.length)?.[1];
    const keyId = skiValue ? ski.subarray(skiValue.content + 2, skiValue.end) : Buffer.alloc(0);
    const noSan = orig.filter((e) => !isSan(e));
    const cases: { name: string; f: Forgery; expected?: { slow?: boolean; fast: boolean } }[] = [
      { name: 're-issued as it was', f: { exts: orig }, expected: { slow: true, fast: true } },
      { name: 'the same SCT twice', f: { exts: orig, sctCopies: 2 }, expected: { slow: false, fast: false } },
      { name: 'an extra unknown extension', f: { exts: [...orig, ext(hex('2a0304'), hex('0500'))] }, expected: { slow: true, fast: true } },
      { name: 'no SAN', f: { exts: noSan }, expected: { slow: true, fast: true } },
      { name: 'a second SAN before the first', f: { exts: [sanUri('https://evil.example/'), ...orig] }, expected: { slow: true, fast: true } },
      { name: 'a SAN under a non-minimal OID encoding first', f: { exts: [sanUri('https://evil.example/', hex('551d8011')), ...orig] }, expected: { slow: true, fast: true } },
      { name: 'a SAN with an empty URI and an rfc822Name', f: { exts: [ext(hex('551d11'), tlv(0x30, tlv(0x86, Buffer.alloc(0)), tlv(0x81, Buffer.from('a@b.example')))), ...noSan] }, expected: { slow: true, fast: true } },
      { name: 'a SAN with an rfc822Name before a URI', f: { exts: [ext(hex('551d11'), tlv(0x30, tlv(0x81, Buffer.from('a@b.example')), tlv(0x86, Buffer.from('https://c.example/')))), ...noSan] }, expected: { slow: true, fast: true } },
      { name: 'the SCT extension under another OID', f: { exts: orig, sctOid: hex('2b06010401d679020403') }, expected: { slow: true, fast: true } },
      { name: 'the SCT extension marked critical', f: { exts: orig, sctCritical: true }, expected: { slow: true, fast: true } },
      { name: 'an SCT naming SHA-384 over a SHA-256 signature', f: { exts: orig, sctHash: 5 }, expected: { slow: false, fast: false } },
      { name: 'bytes after the SCT list', f: { exts: orig, sctTrailer: hex('00') }, expected: { fast: false } },
      { name: 'bytes after the certificate', f: { exts: orig, certTrailer: hex('00') }, expected: { fast: false } },
      { name: 'a long-form length in an extension', f: { exts: [...orig, hex('30810b 06032a0304 0404 30020500')] }, expected: { slow: false, fast: false } },
      { name: 'an extension that is not a SEQUENCE', f: { exts: [hex('04023000'), ...orig] }, expected: { slow: false, fast: false } },
      { name: 'CA:TRUE on the leaf', f: { exts: [...orig, ext(hex('551d13'), hex('30030101ff'))] }, expected: { fast: false } },
      { name: 'basic constraints with a path length and no CA flag', f: { exts: [...orig, ext(hex('551d13'), hex('3003020100'))] }, expected: { slow: false, fast: false } },
      { name: 'an authority key id equal to the subject key id', f: { exts: [...orig.filter((e) => e === 'SCT' || oidOfItem(e) !== '551d23'), ext(hex('551d23'), tlv(0x30, tlv(0x80, keyId)))] }, expected: { fast: false } },
      { name: 'only the SCT extension', f: { exts: ['SCT'] } },
      { name: 'the SCT extension twice', f: { exts: [...orig, 'SCT'] } },
    ];
    const got: Record<string, unknown> = {};
    const want: Record<string, unknown> = {};
    for (const c of cases) {
      const v = verdicts(p, withField(json, certPath, forge(der, c.f)));
      got[c.name] = v && { ...(c.expected?.slow === undefined ? {} : { slow: v.slow }), fast: v.fast, subset: !v.fast || v.slow === true };
      want[c.name] = { ...(c.expected ?? { fast: v?.fast }), subset: true };
    }
    expect(got).toEqual(want);
  });

  it('a TSA token with bytes after it is left to the Verifier', () => {
    const path = ['verificationMaterial', 'timestampVerificationData', 'rfc3161Timestamps', '0', 'signedTimestamp'];
    const v = verdicts(paths(m.trustedRoot), withField(dsse as Json, path, Buffer.concat([fieldBytes(dsse as Json, path), hex('00')])));
    expect(v?.fast).toBe(false);
  });
});

describe('SigstoreBundleVerifier with and without the fast path', () => {
  it('gives the same results and the same errors (codes, messages, details), and takes the fast path for good bundles', () => {
    const make = (fast: boolean) => {
      const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), cacheSize: 0 });
      const internals = v as unknown as { fastIdentity: (...a: unknown[]) => unknown };
      const original = internals.fastIdentity.bind(v);
      const taken = { n: 0 };
      internals.fastIdentity = fast ? (...a: unknown[]) => {
        const r = original(...a);
        if (r) taken.n++;
        return r;
      } : () => undefined;
      return { v, taken };
    };
    const fast = make(true);
    const slow = make(false);
    const policy = { issuer: GH_ISSUER, subject: GH_SAN };
    const certPath = ['verificationMaterial', 'certificate', 'rawBytes'];
    const cases: [string, Json, SigstoreVerifyRequest][] = [
      ['dsse', dsse as Json, { policy, digest: artifactDigest }],
      ['dsse, claims pinned', dsse as Json, { policy: { ...policy, claims: { repository: 'https://github.com/acme/app' } }, digest: artifactDigest }],
      ['dsse, claim mismatch', dsse as Json, { policy: { ...policy, claims: { ref: 'refs/heads/evil' } }, digest: artifactDigest }],
      ['dsse, other subject', dsse as Json, { policy: { ...policy, subject: 'https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main' }, digest: artifactDigest }],
      ['dsse, other image', dsse as Json, { policy, digest: sha256Digest('another image') }],
      ['dsse, no policy', dsse as Json, { digest: artifactDigest }],
      ['dsse, forged certificate', flipped(dsse as Json, certPath, 300), { policy, digest: artifactDigest }],
      ['dsse, duplicate SCTs', withField(dsse as Json, certPath, forge(fieldBytes(dsse as Json, certPath), { exts: [...(certLayout(fieldBytes(dsse as Json, certPath))?.extensions?.items ?? []).map((n) => fieldBytes(dsse as Json, certPath).subarray(n.start, n.end)).filter((e) => !e.includes(OID_SCT_DER)), 'SCT'], sctCopies: 2 })), { policy, digest: artifactDigest }],
      ['dsse, forged signature', flipped(dsse as Json, ['dsseEnvelope', 'signatures', '0', 'sig'], 20), { policy, digest: artifactDigest }],
      ['message over the bytes', message as Json, { policy, artifact }],
      ['message over the digest', message as Json, { policy, digest: artifactDigest }],
      ['message over other bytes', message as Json, { policy, artifact: Buffer.from('other') }],
    ];
    const outcome = (v: SigstoreBundleVerifier, json: Json, req: SigstoreVerifyRequest) => {
      try {
        return { ok: v.verify(JSON.stringify(json), req) };
      } catch (e) {
        const err = e as CtError;
        return { err: { code: err.code, message: err.message, details: err.details } };
      }
    };
    const got = cases.map(([name, json, req]) => ({ name, outcome: outcome(fast.v, json, req) }));
    expect(got).toEqual(cases.map(([name, json, req]) => ({ name, outcome: outcome(slow.v, json, req) })));
    expect(got.filter((g) => 'ok' in g.outcome).map((g) => g.name)).toEqual(['dsse', 'dsse, claims pinned', 'message over the bytes', 'message over the digest']);
    // The good bundles and the bad ones whose signatures all hold (claim, identity, image) went the fast way.
    expect(fast.taken.n).toBe(7);
    expect(slow.taken.n).toBe(0);
  });
});

describe('raw DER helpers', () => {
  it('canonical certificates: the pre-certificate cut from the raw TBS is what @sigstore/core re-encodes', () => {
    const pgBundle = JSON.parse(readFileSync(join(SAMPLES, 'happy-path-v0.3', 'bundle.sigstore.json'), 'utf8'));
    for (const b of [bundleFromJSON(dsse), bundleFromJSON(pgBundle)]) {
      const der = leafOf(b);
      expect(isCanonicalDer(der)).toBe(true);
      const entity = toSignedEntity(b);
      if (entity.key.$case !== 'certificate') throw new Error('not keyless');
      const clone = entity.key.certificate.clone();
      const index = clone.extensions.findIndex((e) => e.subs[0].toOID() === '1.3.6.1.4.1.11129.2.4.2');
      expect(index).toBeGreaterThanOrEqual(0);
      clone.extensions.splice(index, 1);
      const layout = certLayout(der);
      expect(layout).not.toBeNull();
      expect(tbsWithoutExtension(der, layout!, index)?.toString('hex')).toBe(clone.tbsCertificate.toDER().toString('hex'));
    }
  });

  it('a non-minimal length anywhere makes a certificate non-canonical (the Verifier path takes it)', () => {
    const der = Buffer.from(leafOf(bundleFromJSON(dsse)));
    // SEQUENCE { INTEGER 5 } with its length written in long form.
    expect(isCanonicalDer(Buffer.from('3003020105', 'hex'))).toBe(true);
    expect(isCanonicalDer(Buffer.from('308103020105', 'hex'))).toBe(false);
    expect(isCanonicalDer(Buffer.from('300402810105', 'hex'))).toBe(false);
    // An OCTET STRING that is not DER inside stays opaque, as in core.
    expect(isCanonicalDer(Buffer.from('3004040281ff', 'hex'))).toBe(true);
    expect(isCanonicalDer(Buffer.concat([der, Buffer.from([0])]))).toBe(false);
  });

  it('claim values read from their header are what @sigstore/core reads (every tag, lengths, truncations, random bytes)', () => {
    const core = (v: Buffer): string | undefined => {
      try {
        const obj = ASN1Obj.parseBuffer(v as Buffer<ArrayBuffer>);
        return [0x0c, 0x13, 0x16].includes(obj.tag.number) ? obj.value.toString('utf8') : undefined;
      } catch {
        return undefined;
      }
    };
    const inputs: Buffer[] = [Buffer.alloc(0), hex('0c'), hex('0c00'), hex('0c8100'), hex('0c8101'), hex('0c810141'), hex('0c820001 41'), hex('0c87 00000000000001 41'), hex('0c80 41 0000')];
    for (let tag = 0; tag < 256; tag++) {
      inputs.push(Buffer.from([tag, 3, 0x61, 0x62, 0x63]), Buffer.from([tag, 3, 0x61, 0x62]), Buffer.from([tag, 2, 0x61, 0x62, 0xff, 0xff]));
      inputs.push(Buffer.from([tag, 4, 0x0c, 0x02, 0x68, 0x69]), Buffer.from([tag, 4, 0x0c, 0x03, 0x68, 0x69]), Buffer.from([tag, 0x81, 3, 0xe2, 0x82, 0xac]));
    }
    let seed = 14;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
    for (let i = 0; i < 3000; i++) inputs.push(Buffer.from(Array.from({ length: 1 + (i % 9) }, rnd)));
    const differ = inputs.filter((v) => derString(v) !== core(v)).map((v) => v.toString('hex'));
    expect(differ).toEqual([]);
    expect(inputs.filter((v) => derString(v) !== undefined).length).toBeGreaterThan(50);
  });

  it('memoized certificates: toDER() is the parsed bytes only where @sigstore/core re-encodes the same', () => {
    const certPath = ['verificationMaterial', 'certificate', 'rawBytes'];
    const der = fieldBytes(dsse as Json, certPath);
    const len = der.readUInt16BE(2);
    const variants = {
      canonical: der,
      'non-minimal outer length': Buffer.concat([hex('3083'), Buffer.from([0, len >> 8, len & 0xff]), der.subarray(4)]),
      'non-minimal length inside': forge(der, { exts: [hex('30810b 06032a0304 0404 30020500'), 'SCT'] }),
    };
    const certOf = (bytes: Buffer) => {
      const key = toSignedEntity(bundleFromJSON(withField(dsse as Json, certPath, bytes))).key;
      if (key.$case !== 'certificate') throw new Error('not keyless');
      return key.certificate;
    };
    const encodings = (c: ReturnType<typeof certOf>) => [c.root.toDER(), c.tbsCertificate.toDER(), ...c.extensions.map((e) => e.toDER())].map((b) => b.toString('hex'));
    for (const [name, bytes] of Object.entries(variants)) {
      const memo = certOf(bytes);
      memoizeCertificate(memo);
      expect({ name, der: encodings(memo) }).toEqual({ name, der: encodings(certOf(bytes)) });
    }
    expect(encodings(certOf(variants['non-minimal outer length']))[0]).not.toBe(variants['non-minimal outer length'].toString('hex'));
  });
});
