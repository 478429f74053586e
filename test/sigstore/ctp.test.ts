/**
 * Sigstore attestations inside a .ctp, through the shared report (src/verify/ctp): the verifier list
 * of the .ctp verifier carries ours, Rekor entries count towards the log quorum by operator, and
 * identity and file coverage are enforced.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { join } from 'node:path';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { tempDir } from '../verify/ctp-fixtures.js';
import { makeStore, trustOf } from '../verify/fixtures.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { openCtp } from '../../src/bundle/read.js';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../../src/verify/ctp/verifiers.js';
import { SigstoreAttestationVerifier } from '../../src/verify/sigstore/index.js';
import { GH_ISSUER, GH_SAN, rootOf, writeKeylessCtp } from './fixtures.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let m: SigstoreMock;
let tmp: Awaited<ReturnType<typeof tempDir>>;
let signed: string;

beforeAll(async () => {
  m = await startSigstoreMock();
  tmp = await tempDir('ct-sigstore-ctp-');
  signed = await writeKeylessCtp(m, tmp.dir);
});
afterAll(async () => {
  await m.close();
  await tmp.cleanup();
});

function options(policy?: { issuer: string; subject?: string; subjectRegExp?: string }) {
  const root = rootOf(m);
  const store = makeStore({ signers: [], logs: [] });
  return {
    trust: { ...trustOf(store), trustedRoot: root, trustedRootDigest: root.digest },
    requirements: { logQuorum: 1 },
    verifiers: defaultVerifiers({ ...(policy ? { policy } : {}), trustedRoot: root }),
  };
}

describe('.ctp with Sigstore attestations only', () => {
  it('ALLOW with the right identity; the Rekor operator is counted', async () => {
    const r = await verifyCtp(signed, options({ issuer: GH_ISSUER, subject: GH_SAN }));
    expect({ decision: r.decision, code: r.code }).toEqual({ decision: 'ALLOW', code: null });
    expect(r.evidence.attestations).toHaveLength(2);
    expect(r.evidence.attestations.every((a) => a.source === 'sigstore' && a.logOperators.includes('ct-test-rekor'))).toBe(true);
    expect(r.evidence.attestations[0].signers[0]).toMatchObject({ kind: 'keyless', subject: GH_SAN, issuer: GH_ISSUER });
  });

  it('REJECT IDENTITY_MISMATCH for another identity; a quorum of 2 operators is not met by one Rekor', async () => {
    const wrong = await verifyCtp(signed, options({ issuer: GH_ISSUER, subjectRegExp: 'acme/app' }));
    expect({ decision: wrong.decision, code: wrong.code }).toEqual({ decision: 'REJECT', code: 'IDENTITY_MISMATCH' });
    const quorum = await verifyCtp(signed, { ...options({ issuer: GH_ISSUER, subject: GH_SAN }), requirements: { logQuorum: 2 } });
    expect({ decision: quorum.decision, code: quorum.code }).toEqual({ decision: 'REJECT', code: 'INSUFFICIENT_LOG_COVERAGE' });
  });

  it('without an identity policy the Sigstore attestations prove nothing: not ALLOW', async () => {
    const r = await verifyCtp(signed, options());
    expect(r.decision).toBe('REJECT');
    expect(['UNCOVERED_FILE', 'MISSING_ATTESTATION']).toContain(r.code);
    const direct = await new SigstoreAttestationVerifier({ trustedRoot: rootOf(m) }).verify({
      imageDigest: r.evidence.imageDigest || undefined,
      inputs: [{ name: 'attestations/provenance.sigstore.json', data: (await openCtp(signed)).file('attestations/provenance.sigstore.json') }],
      trust: options().trust,
      allowLegacyPae: false,
      now: new Date(),
    });
    expect(direct.attestations).toHaveLength(0);
    expect(direct.warnings.join('\n')).toContain('Sigstore attestation(s) ignored');
  });

  it('junk in a Sigstore bundle is refused, with or without an identity asked for (#13 finding 5)', async () => {
    const good = JSON.parse((await openCtp(signed)).file('attestations/provenance.sigstore.json').toString('utf8'));
    const variant = async (name: string, doc: unknown) => {
      const p = join(tmp.dir, `${name}.ctp`);
      await rewriteCtp(signed, p, { add: { 'attestations/provenance.sigstore.json': Buffer.from(JSON.stringify(doc)) } });
      return p;
    };
    const cases: [string, (d: Json) => void, string][] = [
      ['extra-top', (d) => (d.junk = 'x'.repeat(50_000)), 'MALFORMED_BUNDLE'],
      ['extra-deep', (d) => (d.verificationMaterial.tlogEntries[0].note = 'hi'), 'MALFORMED_BUNDLE'],
      ['extra-empty', (d) => (d.junk = ''), 'MALFORMED_BUNDLE'],
      ['extra-empty-deep', (d) => (d.verificationMaterial.junk = []), 'MALFORMED_BUNDLE'],
      ['proto', (d) => Object.defineProperty(d.dsseEnvelope, '__proto__', { value: { x: 1 }, enumerable: true }), 'MALFORMED_BUNDLE'],
      ['message', (d) => { delete d.dsseEnvelope; d.messageSignature = { messageDigest: { algorithm: 'SHA2_256', digest: Buffer.alloc(32).toString('base64') }, signature: d.verificationMaterial.tlogEntries[0].logIndex }; }, 'MALFORMED_BUNDLE'],
      ['resigned', (d) => (d.dsseEnvelope.signatures[0].sig = Buffer.alloc(64, 1).toString('base64')), 'INVALID_SIGNATURE'],
    ];
    for (const [name, edit, code] of cases) {
      const doc = structuredClone(good);
      edit(doc);
      const p = await variant(name, doc);
      const none = await verifyCtp(p, options());
      expect({ name, code: none.code }).toEqual({ name, code });
      if (name.startsWith('extra') || name === 'proto') {
        const judged = await verifyCtp(p, options({ issuer: GH_ISSUER, subject: GH_SAN }));
        expect({ name, code: judged.code }).toEqual({ name, code });
      }
    }
    // Keys holding protobuf defaults (what protobuf JSON leaves out) are the format's own.
    const defaults = structuredClone(good);
    defaults.verificationMaterial.timestampVerificationData = { rfc3161Timestamps: [] };
    const ok = await verifyCtp(await variant('defaults', defaults), options({ issuer: GH_ISSUER, subject: GH_SAN }));
    expect({ decision: ok.decision, code: ok.code }).toEqual({ decision: 'ALLOW', code: null });
  });

  it('a swapped security/seccomp.json is not covered by the Sigstore attestations', async () => {
    const swapped = join(tmp.dir, 'swapped.ctp');
    await rewriteCtp(signed, swapped, { add: { 'security/seccomp.json': Buffer.from('{"defaultAction":"SCMP_ACT_ALLOW"}') } });
    const r = await verifyCtp(swapped, options({ issuer: GH_ISSUER, subject: GH_SAN }));
    expect(r.decision).toBe('REJECT');
    expect(['DIGEST_MISMATCH', 'UNCOVERED_FILE']).toContain(r.code);
  });

describe('bounds', () => {
  it('more Sigstore attestation files than a bundle may hold is MALFORMED_BUNDLE, before any is verified', async () => {
    const one = (await openCtp(signed)).file('attestations/provenance.sigstore.json');
    const add: Record<string, Buffer> = {};
    for (let i = 0; i < 65; i++) add[`attestations/extra-${i}.sigstore.json`] = one;
    const many = join(tmp.dir, 'many.ctp');
    await rewriteCtp(signed, many, { add });
    const r = await verifyCtp(many, options({ issuer: GH_ISSUER, subject: GH_SAN }));
    expect({ decision: r.decision, code: r.code }).toEqual({ decision: 'REJECT', code: 'MALFORMED_BUNDLE' });
    expect(r.message).toMatch(/67 Sigstore attestation files; at most 64/);
  });
});
});
