/**
 * Keyless signers named by policies are the identities whose Sigstore attestations count where a
 * bundle is verified beside a policy set (src/policy/keyless-trust.ts): a bundle signed only
 * keylessly verifies when its certificate's identity is one a policy names (issuer, subject as the
 * policy matches it, claims), is refused with the certificate's actual identity otherwise, and
 * proves nothing when no policy names a keyless signer. Which identity may sign for which
 * environment stays each policy's own `signers` rule.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signCtpInMemory, tempDir, writeUnsignedCtp } from '../verify/ctp-fixtures.js';
import { makeKey, makeStore, MemLog, trustOf } from '../verify/fixtures.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../../src/verify/ctp/verifiers.js';
import { VerificationCache } from '../../src/verify/cache.js';
import { SigstoreVerifierPool } from '../../src/verify/sigstore/pool.js';
import { compileTexts } from '../../src/policy/load.js';
import type { PolicySet } from '../../src/policy/policy-set.js';
import { keylessTrustOf, withPolicyKeyless } from '../../src/policy/keyless-trust.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { readBundleFacts } from '../../src/policy/bundle-facts.js';
import { promotionEvidence } from '../../src/promote/evidence.js';
import { GH_ISSUER, GH_SAN, rootOf, signCtpKeyless, writeKeylessCtp } from '../sigstore/fixtures.js';

let m: SigstoreMock;
let tmp: Awaited<ReturnType<typeof tempDir>>;
let signed: string;

beforeAll(async () => {
  m = await startSigstoreMock();
  tmp = await tempDir('ct-keyless-trust-');
  signed = await writeKeylessCtp(m, tmp.dir);
}, 60_000);
afterAll(async () => {
  await m?.close();
  await tmp?.cleanup();
});

const OTHER_SAN = 'https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main';

function policy(name: string, env: string, signer: string[]): string {
  return ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', `name: ${name}`, 'mode: strict', 'match:', `  environments: [${env}]`, 'signers:', ...signer.map((l, i) => (i === 0 ? `  - ${l}` : `    ${l}`)), 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', 'logQuorum: 1', ''].join('\n');
}

function setOf(...policies: string[]): PolicySet {
  const loaded = compileTexts(policies.map((text, i) => ({ file: `p${i}.policy.yaml`, text })));
  if (!loaded.set) throw new Error(JSON.stringify(loaded.issues));
  return loaded.set;
}

const exact = (san: string, issuer = GH_ISSUER) => [`issuer: ${issuer}`, `subject: ${san}`];
const trusted = setOf(policy('production', 'production', exact(GH_SAN)), policy('staging', 'staging', exact(OTHER_SAN)));

function options(set: PolicySet | undefined, extra: { cache?: VerificationCache; verifiers?: ReturnType<typeof defaultVerifiers> } = {}) {
  const root = rootOf(m);
  const store = makeStore({ signers: [], logs: [] });
  return {
    trust: withPolicyKeyless({ ...trustOf(store), trustedRoot: root, trustedRootDigest: root.digest }, set),
    mode: 'audit' as const,
    requirements: { logQuorum: 1 },
    verifiers: extra.verifiers ?? defaultVerifiers({ trustedRoot: root }),
    ...(extra.cache ? { cache: extra.cache } : {}),
  };
}

describe('keyless signers of the policies', () => {
  it('a keyless-only bundle verifies when a policy names its identity; each policy still judges its own signers', async () => {
    const r = await verifyCtp(signed, options(trusted));
    expect({ decision: r.decision, code: r.code }).toEqual({ decision: 'ALLOW', code: null });
    expect(r.evidence.attestations.map((a) => a.signers[0])).toEqual([expect.objectContaining({ kind: 'keyless', subject: GH_SAN, issuer: GH_ISSUER }), expect.objectContaining({ kind: 'keyless', subject: GH_SAN })]);
    const manifest = await readBundleFacts(signed);
    const judge = (environment: string) => evaluate(trusted, { evidence: r.evidence, manifest, host: { environment }, findings: [] });
    expect(judge('production')).toMatchObject({ allow: true });
    // Trusted by the set (production names it), yet staging's policy asks for another workflow.
    const staging = judge('staging');
    expect(staging.allow).toBe(false);
    expect(staging.violations[0]).toMatchObject({ code: 'SIGNER_NOT_ALLOWED' });
    expect(staging.violations[0].message).toContain(GH_SAN);
  });

  it('subjects and claims match as the policy writes them: regex, glob, claims', async () => {
    const regex = setOf(policy('p', 'production', [`issuer: ${GH_ISSUER}`, "subject: { regex: '^https://github\\.com/acme/[^/]+/\\.github/workflows/release\\.yml@refs/heads/main$' }"]));
    expect((await verifyCtp(signed, options(regex))).decision).toBe('ALLOW');
    const claims = setOf(policy('p', 'production', [...exact(GH_SAN), 'claims:', '  sourceRepositoryRef: refs/heads/main']));
    expect((await verifyCtp(signed, options(claims))).decision).toBe('ALLOW');
    const wrongClaim = setOf(policy('p', 'production', [...exact(GH_SAN), 'claims:', '  sourceRepositoryRef: refs/heads/release']));
    const r = await verifyCtp(signed, options(wrongClaim));
    expect({ decision: r.decision, code: r.code }).toEqual({ decision: 'REJECT', code: 'IDENTITY_MISMATCH' });
    // Claim names as users write them: the aliases and Fulcio's names in any capitalisation.
    for (const name of ['repository', 'sourceRepositoryURI']) {
      const alias = setOf(policy('p', 'production', [...exact(GH_SAN), 'claims:', `  ${name}: https://github.com/acme/app`]));
      expect(alias.policies[0].signers[0].claims?.map((c) => c[0])).toEqual(['sourceRepositoryUri']);
      expect((await verifyCtp(signed, options(alias))).decision).toBe('ALLOW');
    }
    expect(() => setOf(policy('p', 'production', [...exact(GH_SAN), 'claims:', '  repository: https://github.com/acme/app', '  sourceRepositoryUri: https://github.com/acme/app']))).toThrow(/named twice/);
    expect((await verifyCtp(signed, options(setOf(policy('p', 'production', [...exact(GH_SAN), 'claims:', '  owner: https://github.com/acme']))))).decision).toBe('ALLOW');
    expect(() => setOf(policy('p', 'production', [...exact(GH_SAN), 'claims:', '  colour: blue']))).toThrow(/unknown certificate claim/);
    // A policy scoped to the certificate's repository applies (match.sourceRepositories reads the claim).
    const scoped = setOf(policy('p', 'production', exact(GH_SAN)).replace('match:\n', "match:\n  sourceRepositories: ['https://github.com/acme/app']\n"));
    const ev = (await verifyCtp(signed, options(scoped))).evidence;
    expect(evaluate(scoped, { evidence: ev, manifest: await readBundleFacts(signed), host: { environment: 'production' }, findings: [] })).toMatchObject({ allow: true, policies: ['p'] });
    // An unanchored-looking pattern is still matched whole: `acme/app` is not the SAN.
    const partial = setOf(policy('p', 'production', [`issuer: ${GH_ISSUER}`, "subject: { regex: 'acme/app' }"]));
    expect((await verifyCtp(signed, options(partial))).code).toBe('IDENTITY_MISMATCH');
  });

  it('an identity no policy names is refused, naming the certificate\'s actual identity', async () => {
    const r = await verifyCtp(signed, options(setOf(policy('staging', 'staging', exact(OTHER_SAN)))));
    expect({ decision: r.decision, code: r.code }).toEqual({ decision: 'REJECT', code: 'IDENTITY_MISMATCH' });
    expect(r.message).toContain('attestations/provenance.sigstore.json');
    expect(r.message).toContain(GH_SAN);
    expect(r.message).toContain(OTHER_SAN);
    // The same subject from another issuer is another identity.
    const gitlab = await verifyCtp(signed, options(setOf(policy('p', 'production', exact(GH_SAN, 'https://gitlab.com')))));
    expect(gitlab.code).toBe('IDENTITY_MISMATCH');
  });

  it('no policy names a keyless signer: Sigstore attestations prove nothing (not ALLOW)', async () => {
    const keysOnly = setOf(policy('p', 'production', [`keyId: sha256:${'1'.repeat(64)}`]));
    expect(keylessTrustOf(keysOnly)).toBeUndefined();
    const r = await verifyCtp(signed, options(keysOnly));
    expect(r.decision).toBe('REJECT');
    expect(r.code).toBe('UNCOVERED_FILE');
    expect(r.warnings.join('\n')).toMatch(/Sigstore attestation\(s\) ignored: no keyless identity given/);
  });

  it('the signers of an expired policy are not trusted (it applies to nothing)', async () => {
    const soon = new Date(Date.now() + 60_000).toISOString();
    const set = setOf(policy('production', 'production', exact(GH_SAN)).replace('mode: strict\n', `mode: strict\nexpires: '${soon}'\n`));
    expect(keylessTrustOf(set)?.labels).toHaveLength(1);
    expect(keylessTrustOf(set, Date.now() + 120_000)).toBeUndefined();
    const past = setOf(policy('production', 'production', exact(GH_SAN)).replace('mode: strict\n', "mode: strict\nexpires: '2020-01-01T00:00:00Z'\n"));
    expect((await verifyCtp(signed, options(past))).code).toBe('UNCOVERED_FILE');
  });

  it('a cached verdict is not reused once the policies trust other identities', async () => {
    const cache = new VerificationCache({ maxEntries: 16 });
    expect((await verifyCtp(signed, options(trusted, { cache }))).decision).toBe('ALLOW');
    const narrowed = setOf(policy('staging', 'staging', exact(OTHER_SAN)));
    expect((await verifyCtp(signed, options(narrowed, { cache }))).code).toBe('IDENTITY_MISMATCH');
    expect((await verifyCtp(signed, options(undefined, { cache }))).code).toBe('UNCOVERED_FILE');
    expect((await verifyCtp(signed, options(trusted, { cache }))).decision).toBe('ALLOW');
  });

  it('verification threads (the server\'s pool) judge the same', async () => {
    const pool = new SigstoreVerifierPool({ trustedRoot: rootOf(m) }, { size: 2 });
    try {
      expect((await verifyCtp(signed, options(trusted, { verifiers: pool.verifiers }))).decision).toBe('ALLOW');
      expect((await verifyCtp(signed, options(setOf(policy('s', 'staging', exact(OTHER_SAN))), { verifiers: pool.verifiers }))).code).toBe('IDENTITY_MISMATCH');
    } finally {
      await pool.close();
    }
  });

  it('promotion evidence counts the keyless attestations of the policies\' identities', async () => {
    const root = rootOf(m);
    const ev = await promotionEvidence({ candidate: signed, trust: { ...trustOf(makeStore({ signers: [], logs: [] })), trustedRoot: root, trustedRootDigest: root.digest }, policies: trusted, environment: 'production' });
    expect(ev.integrity).toEqual([]);
    expect(ev.signers).toContainEqual(expect.objectContaining({ kind: 'keyless', identity: GH_SAN }));
    expect(ev.policy).toMatchObject({ environment: 'production', allow: true });
  });

  it('a signer trusted for one environment cannot add security files to a bundle another environment\'s signer built', async () => {
    // Production trusts key K; staging a keyless workflow. K built the bundle without a monitor; the
    // workflow's attestations add security/monitor.yaml and cover everything.
    const k = makeKey();
    const log = new MemLog('log-one', 'Operator One');
    await writeUnsignedCtp(join(tmp.dir, 'k-unsigned.ctp'));
    await signCtpInMemory(join(tmp.dir, 'k-unsigned.ctp'), join(tmp.dir, 'k-signed.ctp'), k, [log]);
    await rewriteCtp(join(tmp.dir, 'k-signed.ctp'), join(tmp.dir, 'k-monitor.ctp'), { add: { 'security/monitor.yaml': Buffer.from('version: 1\nrules:\n  - name: anything\n    kind: exec\n    allow: ["/**"]\n    severity: low\n') } });
    await signCtpKeyless(m, join(tmp.dir, 'k-monitor.ctp'), join(tmp.dir, 'attacked.ctp'));
    const set = setOf(policy('production', 'production', [`keyId: ${k.keyId}`]), policy('staging', 'staging', exact(GH_SAN)));
    const root = rootOf(m);
    const trust = withPolicyKeyless({ ...trustOf(makeStore({ signers: [{ key: k }], logs: [log] })), trustedRoot: root, trustedRootDigest: root.digest }, set);
    const r = await verifyCtp(join(tmp.dir, 'attacked.ctp'), { trust, mode: 'audit', requirements: { logQuorum: 1 }, verifiers: defaultVerifiers({ trustedRoot: root }) });
    // The verifier accepts it: every file is covered by a trusted signer.
    expect({ decision: r.decision, code: r.code }).toEqual({ decision: 'ALLOW', code: null });
    expect(r.evidence.coveredFiles).toHaveProperty(['security/monitor.yaml']);
    const manifest = await readBundleFacts(join(tmp.dir, 'attacked.ctp'));
    const d = evaluate(set, { evidence: r.evidence, manifest, host: { environment: 'production' }, findings: [] });
    expect(d.allow).toBe(false);
    expect(d.violations).toEqual([expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED', rule: 'signers', evidence: { files: ['security/monitor.yaml'] } })]);
    // Nor when production trusts the workflow for one predicate only (an SBOM signer, say).
    const sbomSigner = setOf(policy('production', 'production', [`keyId: ${k.keyId}`]).replace('logQuorum: 1', `  - predicateType: https://spdx.dev/Document\n    signers: [{ issuer: ${GH_ISSUER}, subject: ${GH_SAN} }]\nlogQuorum: 1`));
    const trust2 = withPolicyKeyless(trust, sbomSigner);
    const r2 = await verifyCtp(join(tmp.dir, 'attacked.ctp'), { trust: trust2, mode: 'audit', requirements: { logQuorum: 1 }, verifiers: defaultVerifiers({ trustedRoot: root }) });
    expect(evaluate(sbomSigner, { evidence: r2.evidence, manifest, host: { environment: 'production' }, findings: [] }).violations.map((v) => v.code)).toEqual(['SIGNER_NOT_ALLOWED']);
    // A policy in audit mode only warns (the check is the policy's, not the verifier's integrity).
    const audit = setOf(policy('production', 'production', [`keyId: ${k.keyId}`]).replace('mode: strict', 'mode: audit'));
    expect(evaluate(audit, { evidence: r.evidence, manifest, host: { environment: 'production' }, findings: [] })).toMatchObject({ allow: true, warnings: [expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED' })] });
    // K's own bundle, untouched, is allowed there.
    const plain = await verifyCtp(join(tmp.dir, 'k-signed.ctp'), { trust, mode: 'audit', requirements: { logQuorum: 1 }, verifiers: defaultVerifiers({ trustedRoot: root }) });
    expect(evaluate(set, { evidence: plain.evidence, manifest: await readBundleFacts(join(tmp.dir, 'k-signed.ctp')), host: { environment: 'production' }, findings: [] })).toMatchObject({ allow: true });
  });
});
