/**
 * The fast path (src/verify/sigstore/fast-path.ts) only accepts what @sigstore/verify accepts: it is
 * run side by side with the unmodified Verifier on good bundles (it must take them: that is its
 * point) and on every single-byte change of the signing certificate, the TSA token, the SET, the
 * signature and the payload (it must refuse each one the Verifier refuses). The raw-DER helpers are
 * compared with what @sigstore/core re-encodes.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier, type SignedEntity } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signAttestationForCtp, signMessage, type SerializedBundle } from '../../src/sign/index.js';
import { FastPath } from '../../src/verify/sigstore/fast-path.js';
import { certLayout, isCanonicalDer, tbsWithoutExtension } from '../../src/verify/sigstore/der.js';
import { publicGoodSeed } from '../../src/verify/sigstore/index.js';
import { artifact, artifactDigest, keylessOptions, statementFor } from './fixtures.js';

const SAMPLES = join(process.cwd(), '..', 'shared', 'reference', 'samples', 'sigstore');

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

/** Both verdicts on one bundle JSON (the Verifier's only when `always` or the fast path accepted): null when it does not parse. */
function verdicts(p: ReturnType<typeof paths>, json: Json, artifactBytes?: Buffer, always = true): { slow: boolean | null; fast: boolean } | null {
  let b: Bundle;
  let entity: SignedEntity;
  try {
    b = bundleFromJSON(json);
    entity = toSignedEntity(b, artifactBytes);
  } catch {
    return null;
  }
  const tsas = (b.verificationMaterial.timestampVerificationData?.rfc3161Timestamps ?? []).map((t) => t.signedTimestamp);
  const fast = p.fast.verify(entity, leafOf(b), tsas);
  if (!always && !fast) return { slow: null, fast };
  let slow = true;
  try {
    p.verifier.verify(toSignedEntity(b, artifactBytes));
  } catch {
    slow = false;
  }
  return { slow, fast };
}

function flipped(json: Json, path: string[], i: number): Json {
  const copy = JSON.parse(JSON.stringify(json)) as Json;
  let o = copy;
  for (const k of path.slice(0, -1)) o = o[k];
  const last = path[path.length - 1];
  const bytes = Buffer.from(o[last] as string, 'base64');
  bytes[i] ^= 0x01;
  o[last] = bytes.toString('base64');
  return copy;
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

  it('refuses every single-byte change the Verifier refuses (certificate, TSA token, SET, signature, payload, log body)', () => {
    const p = paths(m.trustedRoot);
    const json = dsse as Json;
    const fields: string[][] = [
      ['verificationMaterial', 'certificate', 'rawBytes'],
      ['verificationMaterial', 'timestampVerificationData', 'rfc3161Timestamps', '0', 'signedTimestamp'],
      ['verificationMaterial', 'tlogEntries', '0', 'inclusionPromise', 'signedEntryTimestamp'],
      ['verificationMaterial', 'tlogEntries', '0', 'inclusionProof', 'rootHash'],
      ['verificationMaterial', 'tlogEntries', '0', 'canonicalizedBody'],
      ['dsseEnvelope', 'signatures', '0', 'sig'],
      ['dsseEnvelope', 'payload'],
    ];
    let tried = 0;
    let fastTaken = 0;
    const wrong: string[] = [];
    for (const f of fields) {
      let o: Json = json;
      for (const k of f) o = o[k];
      const n = Buffer.from(o as unknown as string, 'base64').length;
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
});
