/**
 * What a host runs comes from the signers a policy names (src/policy/evaluate.ts coverageFor): the
 * verifier accepts a file any trusted signer covers, so a policy asks that manifest.toml be signed
 * by a signer it names and every security/ file by each named signer of manifest.toml. Each case
 * is one way another trusted signer could otherwise add or replace what the host takes.
 */
import { describe, expect, it } from '@jest/globals';
import { evaluate } from '../../src/policy/evaluate.js';
import { readPolicyInput } from '../../src/policy/input.js';
import { parseSource } from '../../src/policy/source.js';
import { att, ghSigner, GH_ISSUER, input, keySigner, KEY_A, KEY_B, KEY_C, setOf, SLSA, SPDX } from './helpers.js';

const REVIEW = 'https://verified-container.org/v1/review';
const B = `sha256:${'b'.repeat(64)}`;
const ALL = ['manifest.toml', 'security/seccomp.json', 'security/monitor.yaml'];
const covered = Object.fromEntries(ALL.map((f) => [f, B]));

function policy(lines: string[], mode = 'strict'): ReturnType<typeof setOf> {
  return setOf({ 'p.policy.yaml': ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: p', `mode: ${mode}`, 'match:', '  environments: [production]', ...lines, 'logQuorum: 1', ''].join('\n') });
}

function judge(set: ReturnType<typeof setOf>, attestations: ReturnType<typeof att>[]) {
  const i = input({ attestations });
  return evaluate(set, { ...i, evidence: { ...i.evidence, coveredFiles: covered } });
}

describe('files a host runs come from the signers a policy names', () => {
  it('the builder signed everything, a reviewer only the image: allowed', () => {
    const set = policy(['signers:', `  - keyId: ${KEY_A}`, `  - keyId: ${KEY_C}`, 'attestations:', `  - predicateType: ${SLSA}`]);
    const d = judge(set, [att(SLSA, [keySigner(KEY_A)], { subjects: ALL }), att(REVIEW, [keySigner(KEY_C, ['reviewers'])], { subjects: [] })]);
    expect(d).toMatchObject({ allow: true, violations: [] });
  });

  it('the builder\'s attestations stripped, another trusted key signing the files: manifest.toml is nobody\'s the policy names', () => {
    const set = policy(['signers:', `  - keyId: ${KEY_A}`, `  - keyId: ${KEY_C}`, 'attestations:', `  - predicateType: ${REVIEW}`]);
    const d = judge(set, [att(REVIEW, [keySigner(KEY_C, ['reviewers'])], { subjects: [] }), att(SLSA, [keySigner(KEY_B)], { subjects: ALL })]);
    expect(d.allow).toBe(false);
    expect(d.violations).toEqual([expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED', message: expect.stringContaining('manifest.toml is signed by no signer this policy names'), evidence: { files: ALL.slice().sort() } })]);
  });

  it('a builder named for one predicate protects the files it signed; another signer\'s additions are refused', () => {
    const set = policy(['signers:', `  - keyId: ${KEY_C}`, 'attestations:', `  - predicateType: ${REVIEW}`, `  - predicateType: ${SLSA}`, '    signers:', `      - keyId: ${KEY_A}`]);
    const d = judge(set, [att(SLSA, [keySigner(KEY_A)], { subjects: ['manifest.toml'] }), att(REVIEW, [keySigner(KEY_C, ['reviewers'])], { subjects: [] }), att(SPDX, [keySigner(KEY_B)], { subjects: ALL })]);
    expect(d.violations).toEqual([expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED', evidence: { files: ['security/monitor.yaml', 'security/seccomp.json'] } })]);
  });

  it('an SBOM signer the policy trusts for SBOMs cannot add a profile the builder did not sign', () => {
    const set = policy(['signers:', `  - keyId: ${KEY_A}`, 'attestations:', `  - predicateType: ${SLSA}`, `  - predicateType: ${SPDX}`, '    signers:', `      - keyId: ${KEY_B}`]);
    const d = judge(set, [att(SLSA, [keySigner(KEY_A)], { subjects: ['manifest.toml', 'security/seccomp.json'] }), att(SPDX, [keySigner(KEY_B)], { subjects: ALL })]);
    expect(d.violations).toEqual([expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED', evidence: { files: ['security/monitor.yaml'] } })]);
  });

  it('an SBOM signer cannot supply the manifest either, with the builder\'s attestations stripped', () => {
    const set = policy(['signers:', `  - keyId: ${KEY_A}`, `  - keyId: ${KEY_C}`, 'attestations:', `  - predicateType: ${REVIEW}`, `  - predicateType: ${SPDX}`, '    signers:', `      - keyId: ${KEY_B}`]);
    const d = judge(set, [att(REVIEW, [keySigner(KEY_C, ['reviewers'])], { subjects: [] }), att(SPDX, [keySigner(KEY_B)], { subjects: ALL })]);
    expect(d.violations).toEqual([expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED', evidence: { files: ALL.slice().sort() } })]);
  });

  it('a certificate is its whole identity: another run under the same workflow SAN (other claims) adds nothing', () => {
    const builder = ghSigner('acme/app', 'refs/heads/main', { runnerEnvironment: 'github-hosted' });
    const selfHosted = ghSigner('acme/app', 'refs/heads/main', { runnerEnvironment: 'self-hosted' });
    const set = policy(['signers:', `  - issuer: ${GH_ISSUER}`, `    subject: ${builder.subject}`, '    claims:', '      runnerEnvironment: github-hosted', 'attestations:', `  - predicateType: ${SLSA}`, `  - predicateType: ${SPDX}`, '    signers:', `      - issuer: ${GH_ISSUER}`, `        subject: ${builder.subject}`]);
    const d = judge(set, [att(SLSA, [builder], { subjects: ['manifest.toml', 'security/seccomp.json'] }), att(SPDX, [selfHosted], { subjects: ALL })]);
    expect(d.violations).toEqual([expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED', evidence: { files: ['security/monitor.yaml'] } })]);
  });

  it('two signings by the builder\'s own key (two builds of one version) cannot be combined', () => {
    const set = policy(['signers:', `  - keyId: ${KEY_A}`]);
    const d = judge(set, [att(SLSA, [keySigner(KEY_A)], { subjects: ['manifest.toml', 'security/seccomp.json'] }), att(SLSA, [keySigner(KEY_A)], { subjects: ['manifest.toml', 'security/monitor.yaml'] })]);
    expect(d.violations).toEqual([expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED', evidence: { files: ['security/monitor.yaml', 'security/seccomp.json'] } })]);
  });

  it('one of a threshold\'s signers cannot add a file the others did not sign', () => {
    const set = policy(['signers:', `  - keyId: ${KEY_A}`, `  - keyId: ${KEY_B}`, `  - keyId: ${KEY_C}`, 'thresholds:', '  - name: two', '    k: 2', `    predicateType: ${SLSA}`, `    signers: [{ keyId: ${KEY_A} }, { keyId: ${KEY_B} }, { keyId: ${KEY_C} }]`]);
    const d = judge(set, [att(SLSA, [keySigner(KEY_A)], { subjects: ['manifest.toml', 'security/seccomp.json'] }), att(SLSA, [keySigner(KEY_C)], { subjects: ALL })]);
    expect(d.violations).toEqual([expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED', evidence: { files: ['security/monitor.yaml'] } })]);
  });

  it('is the policy\'s own rule: an audit policy warns', () => {
    const set = policy(['signers:', `  - keyId: ${KEY_A}`], 'audit');
    const d = judge(set, [att(SLSA, [keySigner(KEY_A)], { subjects: ['manifest.toml'] }), att(SPDX, [keySigner(KEY_B)], { subjects: ALL })]);
    expect(d).toMatchObject({ allow: true, warnings: [expect.objectContaining({ code: 'SIGNER_NOT_ALLOWED' })] });
  });

describe('hand-written evidence', () => {
  const read = (claims: Record<string, string>) => {
    const doc = { evidence: { imageDigest: B, attestations: [{ predicateType: SLSA, signers: [{ kind: 'keyless', issuer: 'https://token.actions.githubusercontent.com', subject: 'x', claims }] }] }, host: { environment: 'production' } };
    return readPolicyInput(doc, parseSource('evidence.json', JSON.stringify(doc)).source!);
  };
  it('reads claims under the verifier\'s names, and refuses one named twice', () => {
    expect(read({ sourceRepositoryURI: 'https://github.com/acme/app', __proto__x: 'y' }).input!.evidence.attestations[0].signers[0].claims).toEqual({ sourceRepositoryUri: 'https://github.com/acme/app', __proto__x: 'y' });
    expect(read({ ref: 'refs/heads/main', sourceRepositoryRef: 'refs/heads/feature' }).issues.map((i) => i.message)).toEqual([expect.stringContaining('names claim sourceRepositoryRef twice')]);
  });
});
});
