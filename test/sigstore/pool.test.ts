/**
 * Sigstore attestations checked on verification threads (src/verify/sigstore/pool.ts, what the
 * server's deploy steps use): the same verdicts, findings and error codes as the in-thread
 * verifier, with and without an identity policy; a burst of distinct bundles leaves this thread's
 * event loop turning; more waiting files than the bound are refused (VERIFY_QUEUE_FULL), a closed
 * pool fails closed (VERIFY_WORKER_FAILED).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { ctpFiles, tempDir } from '../verify/ctp-fixtures.js';
import { DEFAULT_PREDICATES } from '../verify/fixtures.js';
import { writeCtp, rewriteCtp } from '../../src/bundle/write.js';
import { openCtp, openCtpToVerify } from '../../src/bundle/read.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { coveredFiles } from '../../src/attest/sign-ctp.js';
import { buildStatement, ctpSubjects } from '../../src/attest/statement.js';
import { verifyCtpArchive } from '../../src/verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../../src/verify/ctp/verifiers.js';
import { VerificationCache } from '../../src/verify/cache.js';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { makeStore, trustOf } from '../verify/fixtures.js';
import { signAttestationForCtp } from '../../src/sign/index.js';
import { CtError } from '../../src/core/errors.js';
import type { AttestationVerifier, VerifierResult } from '../../src/verify/report.js';
import { SigstoreAttestationVerifier } from '../../src/verify/sigstore/index.js';
import { SigstoreVerifierPool } from '../../src/verify/sigstore/pool.js';
import { artifactDigest, GH_ISSUER, GH_SAN, keylessOptions, rootOf, statementFor } from './fixtures.js';

const BUNDLES = 12;
let m: SigstoreMock;
let bundles: Buffer[];
let tmp: Awaited<ReturnType<typeof tempDir>>;
let signedCtp: string;
const pools: SigstoreVerifierPool[] = [];

beforeAll(async () => {
  m = await startSigstoreMock();
  bundles = [];
  for (let i = 0; i < BUNDLES; i++) {
    const b = await signAttestationForCtp({ ...statementFor(artifactDigest), predicate: { n: i } }, keylessOptions(m, await m.githubToken()));
    bundles.push(Buffer.from(JSON.stringify(b)));
  }
  // A .ctp whose attestations are all Sigstore bundles (as in ctp.test.ts).
  tmp = await tempDir('ct-sigstore-pool-');
  const unsigned = join(tmp.dir, 'unsigned.ctp');
  await writeCtp(unsigned, ctpFiles().files);
  const archive = await openCtp(unsigned);
  const subjects = ctpSubjects('hello:1.0', checkOciLayout(archive).manifestDigest, coveredFiles(archive));
  const add: Record<string, Buffer> = {};
  for (const [i, p] of DEFAULT_PREDICATES.entries()) {
    const bundle = await signAttestationForCtp(buildStatement(subjects, p.type, p.predicate), keylessOptions(m, await m.githubToken()));
    add[`attestations/${i === 0 ? 'provenance' : 'sbom'}.sigstore.json`] = Buffer.from(JSON.stringify(bundle));
  }
  signedCtp = join(tmp.dir, 'signed.ctp');
  await rewriteCtp(unsigned, signedCtp, { add });
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await m.close();
  await tmp?.cleanup();
});

function pooled(opts: ConstructorParameters<typeof SigstoreVerifierPool>[0], poolOptions?: ConstructorParameters<typeof SigstoreVerifierPool>[1]): AttestationVerifier {
  const p = new SigstoreVerifierPool(opts, poolOptions);
  pools.push(p);
  return p.verifiers.find((v) => v.name === 'sigstore') as AttestationVerifier;
}

function ctx(data: Buffer[]) {
  const root = rootOf(m);
  return {
    imageDigest: artifactDigest,
    inputs: data.map((d, i) => ({ name: `attestations/a${i}.sigstore.json`, data: d })),
    trust: { ...trustOf(makeStore({ signers: [], logs: [] })), trustedRoot: root, trustedRootDigest: root.digest },
    allowLegacyPae: false,
    now: new Date(),
  };
}

async function outcome(v: AttestationVerifier, data: Buffer[]): Promise<VerifierResult | { code: string; message: string; details: Record<string, unknown> }> {
  try {
    return await v.verify(ctx(data));
  } catch (e) {
    if (!(e instanceof CtError)) throw e;
    return { code: e.code, message: e.message, details: e.details };
  }
}

const forged = (b: Buffer): Buffer => {
  const d = JSON.parse(b.toString('utf8'));
  d.dsseEnvelope.signatures[0].sig = Buffer.alloc(70, 1).toString('base64');
  return Buffer.from(JSON.stringify(d));
};

describe('Sigstore verification on threads', () => {
  const policy = { issuer: GH_ISSUER, subject: GH_SAN };

  it('gives exactly what the in-thread verifier gives: verified attestations, refusals and their codes', async () => {
    const threads = pooled({ policy });
    const here = new SigstoreAttestationVerifier({ policy });
    const good = await outcome(threads, bundles.slice(0, 4));
    expect(good).toMatchObject({ verifier: 'sigstore', logEntriesVerified: 4 });
    expect((good as VerifierResult).attestations.map((a) => a.signers[0])).toEqual(Array(4).fill(expect.objectContaining({ kind: 'keyless', subject: GH_SAN, issuer: GH_ISSUER })));
    expect(good).toEqual(await outcome(here, bundles.slice(0, 4)));

    // A forged signature in the third file, another identity, a higher threshold (a finding, not a refusal).
    const bad = [bundles[4], bundles[5], forged(bundles[6]), bundles[7]];
    const refused = await outcome(threads, bad);
    expect(refused).toMatchObject({ code: 'INVALID_SIGNATURE', details: { path: 'attestations/a2.sigstore.json' } });
    expect(refused).toEqual(await outcome(here, bad));
    const other = { issuer: GH_ISSUER, subject: 'https://github.com/evil/app/.github/workflows/x.yml@refs/heads/main' };
    const mismatch = await outcome(pooled({ policy: other }), bundles.slice(0, 2));
    expect(mismatch).toMatchObject({ code: 'IDENTITY_MISMATCH' });
    expect(mismatch).toEqual(await outcome(new SigstoreAttestationVerifier({ policy: other }), bundles.slice(0, 2)));
    const thresholds = { tlog: 2 };
    const finding = await outcome(pooled({ policy, thresholds }), bundles.slice(0, 1));
    expect((finding as VerifierResult).findings.map((f) => f.code)).toEqual(['INSUFFICIENT_LOG_COVERAGE']);
    expect(finding).toEqual(await outcome(new SigstoreAttestationVerifier({ policy, thresholds }), bundles.slice(0, 1)));
  });

  it('without an identity (the server): junk and forged signatures are refused, good files only warned about', async () => {
    const threads = pooled({});
    const here = new SigstoreAttestationVerifier({});
    const good = await outcome(threads, bundles.slice(0, 3));
    expect(good).toMatchObject({ attestations: [], warnings: [expect.stringContaining('3 Sigstore attestation(s) ignored')] });
    expect(good).toEqual(await outcome(here, bundles.slice(0, 3)));
    for (const bad of [forged(bundles[0]), Buffer.from('{"mediaType": 1}'), Buffer.from('not json'), Buffer.alloc(0)]) {
      const r = await outcome(threads, [bundles[1], bad]);
      expect(r).toMatchObject({ code: expect.stringMatching(/^(INVALID_SIGNATURE|MALFORMED_BUNDLE)$/), details: { path: 'attestations/a1.sigstore.json' } });
      expect(r).toEqual(await outcome(here, [bundles[1], bad]));
    }
  });

  it('a burst of distinct bundles leaves the event loop turning (in this thread it does not turn at all)', async () => {
    const turnsDuring = async (v: AttestationVerifier): Promise<{ turns: number; result: VerifierResult }> => {
      let done = false;
      let turns = 0;
      const spin = (): void => {
        if (done) return;
        turns++;
        setImmediate(spin);
      };
      setImmediate(spin);
      const result = await v.verify(ctx(bundles));
      done = true;
      return { turns, result };
    };
    const threads = await turnsDuring(pooled({ policy }));
    const here = await turnsDuring(new SigstoreAttestationVerifier({ policy }));
    expect(threads.result.attestations).toHaveLength(BUNDLES);
    expect(threads.result).toEqual(here.result);
    expect(here.turns).toBe(0);
    expect(threads.turns).toBeGreaterThan(0);
  });

  it('bounds what waits: a file beyond the bound is refused (VERIFY_QUEUE_FULL); a closed pool refuses all', async () => {
    const p = new SigstoreVerifierPool({ policy }, { size: 1, maxQueued: 1 });
    pools.push(p);
    const v = p.verifiers.find((x) => x.name === 'sigstore') as AttestationVerifier;
    // One file on the thread, one waiting, the third refused: the bundle is rejected, never passed.
    const full = await outcome(v, bundles.slice(0, 3));
    expect(full).toMatchObject({ code: 'VERIFY_QUEUE_FULL', details: { path: 'attestations/a2.sigstore.json' } });
    expect(await outcome(v, bundles.slice(0, 2))).toMatchObject({ logEntriesVerified: 2 });
    await p.close();
    expect(await outcome(v, bundles.slice(0, 1))).toMatchObject({ code: 'VERIFY_WORKER_FAILED' });
  });

  it('a whole .ctp as the server verifies it: the same report; a full pool rejects and is not remembered as the verdict', async () => {
    const trust = ctx([]).trust;
    const verify = async (verifiers: AttestationVerifier[], cache?: VerificationCache) => {
      const r = await verifyCtpArchive(await openCtpToVerify(signedCtp), { trust, mode: 'audit', requirements: { logQuorum: 1 }, verifiers, ...(cache ? { cache } : {}) });
      return { decision: r.decision, code: r.code, evidence: r.evidence, findings: r.findings };
    };
    const threads = new SigstoreVerifierPool({ policy });
    pools.push(threads);
    const onThreads = await verify(threads.verifiers);
    expect({ decision: onThreads.decision, code: onThreads.code }).toEqual({ decision: 'ALLOW', code: null });
    expect(onThreads.evidence.attestations.filter((a) => a.source === 'sigstore')).toHaveLength(2);
    expect(onThreads).toEqual(await verify(defaultVerifiers({ policy })));

    const cache = new VerificationCache({ maxEntries: 8 });
    const full = new SigstoreVerifierPool({ policy }, { size: 1, maxQueued: 0 });
    pools.push(full);
    expect(await verify(full.verifiers, cache)).toMatchObject({ decision: 'REJECT', code: 'VERIFY_QUEUE_FULL' });
    // Nothing was judged: the next verification under the same key runs, and its verdict is kept.
    expect(await verify(threads.verifiers, cache)).toMatchObject({ decision: 'ALLOW' });
    expect(await verify(full.verifiers, cache)).toMatchObject({ decision: 'ALLOW' });
  });
});
