import { describe, it, expect } from '@jest/globals';
import { combineReport, DEFAULT_REQUIREMENTS, runVerifiers, type AttestationVerifier, type VerifierResult } from '../../src/verify/report.js';
import { CtError } from '../../src/core/errors.js';
import type { VerifiedAttestation } from '../../src/verify/evidence.js';
import { makeStore, trustOf } from './fixtures.js';

const trust = trustOf(makeStore({ signers: [], logs: [] }));
const base = { imageDigest: `sha256:${'1'.repeat(64)}`, mode: 'strict' as const, trust, now: new Date('2026-11-26T00:00:00Z') };

function att(digest: string, source: 'vcs' | 'sigstore', operators: string[], predicateType = 'https://slsa.dev/provenance/v1'): VerifiedAttestation {
  return {
    digest,
    source,
    predicateType,
    predicate: {},
    subjects: [],
    signers: [source === 'vcs' ? { kind: 'key', keyId: `sha256:${'a'.repeat(64)}` } : { kind: 'keyless', issuer: 'https://issuer', subject: 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main' }],
    logEntries: operators.map((o, i) => ({ logId: `${source}-${i}`, operator: o, logIndex: i, integratedTime: 0, kind: source === 'vcs' ? 'vcs' : 'rekor' })),
    logOperators: operators,
  };
}

const result = (verifier: string, attestations: VerifiedAttestation[]): VerifierResult => ({ verifier, attestations, findings: [], warnings: [], logEntriesVerified: attestations.reduce((n, a) => n + a.logEntries.length, 0) });
const req = { ...DEFAULT_REQUIREMENTS, requiredPredicates: ['https://slsa.dev/provenance/v1'] };

describe('report combiner', () => {
  it('counts the log quorum across verifiers for the same attestation, by distinct operator', () => {
    const d = `sha256:${'d'.repeat(64)}`;
    expect(combineReport(base, [result('vcs', [att(d, 'vcs', ['VCS Op'])])], req).code).toBe('INSUFFICIENT_LOG_COVERAGE');
    const both = combineReport(base, [result('vcs', [att(d, 'vcs', ['VCS Op'])]), result('sigstore', [att(d, 'sigstore', ['Sigstore'])])], req);
    expect(both.decision).toBe('ALLOW');
    expect(both.evidence.attestations).toHaveLength(1);
    expect(both.evidence.attestations[0].logOperators).toEqual(['Sigstore', 'VCS Op']);
    expect(both.logEntriesVerified).toBe(2);
    const sameOp = combineReport(base, [result('vcs', [att(d, 'vcs', ['Op'])]), result('sigstore', [att(d, 'sigstore', ['Op'])])], req);
    expect(sameOp.code).toBe('INSUFFICIENT_LOG_COVERAGE');
  });
  it('an integrity finding rejects in every mode; a requirement finding only in strict', () => {
    const d = `sha256:${'e'.repeat(64)}`;
    const integrity: VerifierResult = { ...result('x', [att(d, 'vcs', ['A', 'B'])]), findings: [{ code: 'IDENTITY_MISMATCH', message: 'm', integrity: true }] };
    const requirement: VerifierResult = { ...result('x', [att(d, 'vcs', ['A', 'B'])]), findings: [{ code: 'THRESHOLD_NOT_MET', message: 'm', integrity: false }] };
    for (const mode of ['strict', 'permissive', 'audit'] as const) {
      expect(combineReport({ ...base, mode }, [integrity], req).decision).toBe('REJECT');
      expect(combineReport({ ...base, mode }, [requirement], req).decision).toBe(mode === 'strict' ? 'REJECT' : 'ALLOW');
    }
    expect(combineReport({ ...base, mode: 'audit' }, [requirement], req).record.code).toBe('THRESHOLD_NOT_MET');
    expect(combineReport({ ...base, mode: 'permissive' }, [requirement], req).record.code).toBeNull();
  });
  it('runVerifiers turns a CtError into a REJECT report with its code, and lets other errors through', async () => {
    const failing: AttestationVerifier = { name: 'f', accepts: () => true, verify: async () => { throw new CtError('INVALID_SIGNATURE', 'bad', {}); } };
    const ctx = { inputs: [], trust, allowLegacyPae: false, now: base.now };
    const { report } = await runVerifiers(base, [failing], () => ctx, req);
    expect(report).toMatchObject({ decision: 'REJECT', code: 'INVALID_SIGNATURE', record: { decision: 'REJECT', code: 'INVALID_SIGNATURE' } });
    const buggy: AttestationVerifier = { name: 'b', accepts: () => true, verify: async () => { throw new TypeError('bug'); } };
    await expect(runVerifiers(base, [buggy], () => ctx, req)).rejects.toThrow(TypeError);
  });
});
