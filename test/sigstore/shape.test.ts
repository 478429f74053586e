/**
 * The strict bundle parse (src/verify/sigstore/shape.ts) refuses any key the protobuf model does not
 * write back. It first tries to show that without re-serialising the bundle (bundleKeysAllWritten);
 * whenever that says yes, the re-serialising check (unreadBundleKey) must find nothing. Compared here
 * on good bundles (mock and public-good samples, message and DSSE, single certificate, certificate
 * chain, key hint) and on every added, replaced and removed key at every level of them. The same for
 * the envelope digest's JCS text, written without envelopeToJSON.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bundleFromJSON, envelopeToJSON, type Bundle } from '@sigstore/bundle';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signAttestationForCtp, signMessage } from '../../src/sign/index.js';
import { bundleKeysAllWritten, strictBundleFromJSON, unreadBundleKey } from '../../src/verify/sigstore/shape.js';
import { envelopeJcs } from '../../src/verify/sigstore/verifier.js';
import { canonicalize } from '../../src/core/jcs.js';
import { artifact, artifactDigest, keylessOptions, samplesDir, statementFor } from './fixtures.js';

const SAMPLES = samplesDir();

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let m: SigstoreMock;
const goods: Json[] = [];

beforeAll(async () => {
  m = await startSigstoreMock();
  const dsse = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()));
  const message = await signMessage(artifact, keylessOptions(m, await m.githubToken()));
  goods.push(dsse as Json, message as Json);
  for (const s of ['happy-path-v0.3', 'happy-path-intoto-in-dsse-v3']) goods.push(JSON.parse(readFileSync(join(SAMPLES, s, 'bundle.sigstore.json'), 'utf8')));
  // The other arms of the verification material: a certificate chain (v0.2) and a key hint.
  const chain = structuredClone(dsse) as Json;
  chain.mediaType = 'application/vnd.dev.sigstore.bundle+json;version=0.2';
  chain.verificationMaterial.x509CertificateChain = { certificates: [chain.verificationMaterial.certificate, chain.verificationMaterial.certificate] };
  delete chain.verificationMaterial.certificate;
  const hint = structuredClone(dsse) as Json;
  hint.verificationMaterial.publicKey = { hint: 'key-1' };
  delete hint.verificationMaterial.certificate;
  goods.push(chain, hint);
});
afterAll(async () => { await m.close(); });

function parsed(json: unknown): Bundle | undefined {
  try {
    return bundleFromJSON(json);
  } catch {
    return undefined;
  }
}

/** Every object in the JSON (messages), with a setter to mutate a copy at the same place. */
function objectPaths(v: unknown, at: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [];
  const out = Array.isArray(v) ? [] : [at];
  for (const [k, c] of Object.entries(v)) out.push(...objectPaths(c, [...at, Array.isArray(v) ? Number(k) : k]));
  return out;
}

function at(root: Json, path: (string | number)[]): Json {
  return path.reduce((o: Json, k) => o[k], root);
}

const KEYS = ['junk', 'mediaType', 'verificationMaterial', 'dsseEnvelope', 'messageSignature', 'publicKey', 'hint', 'x509CertificateChain', 'certificates',
  'rawBytes', 'certificate', 'tlogEntries', 'logIndex', 'logId', 'keyId', 'kindVersion', 'kind', 'version', 'integratedTime', 'inclusionPromise',
  'signedEntryTimestamp', 'inclusionProof', 'rootHash', 'treeSize', 'hashes', 'checkpoint', 'envelope', 'canonicalizedBody', 'timestampVerificationData',
  'rfc3161Timestamps', 'signedTimestamp', 'messageDigest', 'algorithm', 'digest', 'signature', 'payload', 'payloadType', 'signatures', 'sig', 'keyid',
  '__proto__', 'toString', 'constructor'];
const VALUES: unknown[] = ['', 'x', 'AAAA', '=', 0, 1, '0', '1', [], ['AAAA'], [{}], {}, { junk: 1 }, { hint: '' }, null, true, false];

describe('strict bundle parse without re-serialising', () => {
  it('takes the short way on every good bundle, and agrees with the full check there', () => {
    for (const g of goods) {
      const b = parsed(g) as Bundle;
      expect(b).toBeDefined();
      expect(unreadBundleKey(g, b)).toBeUndefined();
      expect(bundleKeysAllWritten(g, b)).toBe(true);
      expect(strictBundleFromJSON(JSON.parse(JSON.stringify(g)), true)).toEqual(b);
    }
  });

  it('never says "all written" where the re-serialising check finds an unread key (every key added, replaced or removed)', () => {
    let compared = 0;
    let short = 0;
    let unread = 0;
    const check = (json: Json) => {
      const b = parsed(json);
      if (!b) return;
      compared++;
      const all = bundleKeysAllWritten(json, b);
      const extra = unreadBundleKey(json, b);
      if (all) {
        short++;
        expect(extra).toBeUndefined();
      }
      if (extra !== undefined) unread++;
    };
    for (const g of goods) {
      for (const p of objectPaths(g)) {
        for (const k of KEYS) {
          for (const v of VALUES) {
            const copy = structuredClone(g);
            Object.defineProperty(at(copy, p), k, { value: structuredClone(v), enumerable: true, configurable: true, writable: true });
            check(copy);
          }
        }
        for (const k of Object.keys(at(g, p))) {
          const removed = structuredClone(g);
          delete at(removed, p)[k];
          check(removed);
        }
      }
    }
    // The comparison means something only if both answers occurred often.
    expect(compared).toBeGreaterThan(5000);
    expect(short).toBeGreaterThan(500);
    expect(unread).toBeGreaterThan(1000);
  });
});

describe('the envelope digest without re-serialising', () => {
  it('writes exactly canonicalize(envelopeToJSON(envelope)), escapes, empty fields and several signatures included', () => {
    const texts = ['', 'application/vnd.in-toto+json', 'a"b\\c\n\u2028\u00e9\ud83d\ude00', '\u0000\u001f', '\ud800'];
    const bytes = [Buffer.alloc(0), Buffer.from([0]), Buffer.from('hello'), Buffer.from([0xfb, 0xff, 0xfe])];
    let n = 0;
    for (const payloadType of texts) {
      for (const payload of bytes) {
        for (const sigs of [[], [{ sig: bytes[2], keyid: '' }], [{ sig: bytes[0], keyid: texts[2] }, { sig: bytes[3], keyid: texts[4] }]]) {
          const env = { payload, payloadType, signatures: sigs };
          expect(envelopeJcs(env)).toBe(canonicalize(envelopeToJSON(env)));
          n++;
        }
      }
    }
    for (const g of goods) {
      const b = bundleFromJSON(g);
      if (b.content.$case === 'dsseEnvelope') expect(envelopeJcs(b.content.dsseEnvelope)).toBe(canonicalize(envelopeToJSON(b.content.dsseEnvelope)));
    }
    expect(n).toBe(60);
  });
});
