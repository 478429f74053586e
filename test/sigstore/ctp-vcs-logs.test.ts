/**
 * Keyless .ctp bundles with VCS transparency-log entries in `attestations/vcs-log-entries.json`
 * (written by the build action's keyless signer, actions/build/sign-keyless.ts): the .ctp verifier
 * checks every entry (SET + inclusion proof with the trust store's log key, entry rebuilt from the
 * Sigstore bundle's DSSE envelope) and counts verified ones towards the log quorum with Rekor, by
 * distinct operator. Junk in the file is rejected; entries of unknown logs never count.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { join } from 'node:path';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { ctpFiles, tempDir } from '../verify/ctp-fixtures.js';
import { makeStore, trustOf, DEFAULT_PREDICATES } from '../verify/fixtures.js';
import { writeCtp, rewriteCtp } from '../../src/bundle/write.js';
import { openCtp } from '../../src/bundle/read.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { coveredFiles } from '../../src/attest/sign-ctp.js';
import { buildStatement, ctpSubjects } from '../../src/attest/statement.js';
import { sha256Digest } from '../../src/core/digest.js';
import { startLogServer, submitToLogs, type LogServer } from '../../src/tlog/index.js';
import type { TrustStore } from '../../src/trust/types.js';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../../src/verify/ctp/verifiers.js';
import { VCS_LOG_ENTRIES_PATH, type VcsLogEntriesDocument } from '../../src/verify/ctp/vcs-log-entries.js';
import type { VerificationReport } from '../../src/verify/report.js';
import type { Mode } from '../../src/verify/evidence.js';
import { signKeyless } from '../../actions/build/sign-keyless.js';
import { GH_ISSUER, GH_SAN, keylessOptions, rootOf } from './fixtures.js';

let m: SigstoreMock;
let tmp: Awaited<ReturnType<typeof tempDir>>;
let logA: LogServer;
let logB: LogServer;
let logC: LogServer;
let signed: string;
let receipts: VcsLogEntriesDocument;
let imageDigest: string;
let n = 0;

function storeWith(logs: { server: LogServer; operator?: string }[]): TrustStore {
  const store = makeStore({ signers: [], logs: [] });
  for (const { server, operator } of logs) store.logs![server.logId] = { operator: operator ?? server.operator, publicKey: server.publicKey, url: server.url, algorithm: 'ed25519' };
  return store;
}

async function verify(path: string, o: { logs?: { server: LogServer; operator?: string }[]; quorum?: number; mode?: Mode; identity?: boolean } = {}): Promise<VerificationReport> {
  const root = rootOf(m);
  const store = storeWith(o.logs ?? [{ server: logA }, { server: logB }]);
  return verifyCtp(path, {
    trust: { ...trustOf(store), trustedRoot: root, trustedRootDigest: root.digest },
    requirements: { logQuorum: o.quorum ?? 2 },
    ...(o.mode ? { mode: o.mode } : {}),
    verifiers: defaultVerifiers({ ...(o.identity === false ? {} : { policy: { issuer: GH_ISSUER, subject: GH_SAN } }), trustedRoot: root }),
  });
}

const outcome = (r: VerificationReport) => ({ decision: r.decision, code: r.code });

/** The signed .ctp with vcs-log-entries.json replaced by `edit(copy)` (or its raw bytes). */
async function withReceipts(edit: ((d: VcsLogEntriesDocument) => void) | Buffer): Promise<string> {
  let bytes: Buffer;
  if (Buffer.isBuffer(edit)) bytes = edit;
  else {
    const d = JSON.parse(JSON.stringify(receipts)) as VcsLogEntriesDocument;
    edit(d);
    bytes = Buffer.from(JSON.stringify(d, null, 2));
  }
  const p = join(tmp.dir, `edited-${n++}.ctp`);
  await rewriteCtp(signed, p, { add: { [VCS_LOG_ENTRIES_PATH]: bytes } });
  return p;
}

beforeAll(async () => {
  m = await startSigstoreMock();
  tmp = await tempDir('ct-sigstore-vcs-logs-');
  logA = await startLogServer({ db: join(tmp.dir, 'a.db'), logId: 'log-a', operator: 'operator-a' });
  logB = await startLogServer({ db: join(tmp.dir, 'b.db'), logId: 'log-b', operator: 'operator-b' });
  logC = await startLogServer({ db: join(tmp.dir, 'c.db'), logId: 'log-c', operator: 'operator-c' });
  const endpoints = [logA, logB, logC].map((l) => ({ id: l.logId, url: l.url, publicKey: l.publicKey, operator: l.operator }));
  // Unrelated entries first, so that log-a's inclusion proofs have a real path.
  for (let i = 0; i < 3; i++) {
    await submitToLogs({ version: 1, entryType: 'attestation', body: { attestationDigest: sha256Digest(`filler ${i}`), subjectDigest: sha256Digest('other image'), predicateType: 'https://example.com/filler' } }, endpoints.slice(0, 1));
  }
  const unsigned = join(tmp.dir, 'unsigned.ctp');
  await writeCtp(unsigned, ctpFiles().files);
  const archive = await openCtp(unsigned);
  const image = checkOciLayout(archive);
  imageDigest = image.manifestDigest;
  const subjects = ctpSubjects('hello:1.0', image.manifestDigest, coveredFiles(archive));
  signed = join(tmp.dir, 'signed.ctp');
  await rewriteCtp(unsigned, signed);
  const { identityToken: _t, ...sigstore } = keylessOptions(m, '');
  await signKeyless(signed, {
    identityToken: await m.githubToken(),
    sigstore,
    statements: DEFAULT_PREDICATES.map((p, i) => ({ file: i === 0 ? 'provenance.sigstore.json' : 'sbom.sigstore.json', statement: buildStatement(subjects, p.type, p.predicate) })),
    logs: endpoints,
    logQuorum: 1,
  });
  receipts = JSON.parse((await openCtp(signed)).file(VCS_LOG_ENTRIES_PATH).toString('utf8')) as VcsLogEntriesDocument;
}, 60_000);
afterAll(async () => {
  await Promise.allSettled([m?.close(), logA?.close(), logB?.close(), logC?.close()]);
  await tmp.cleanup();
});

describe('keyless .ctp: VCS log entries count towards the log quorum', () => {
  it('the fixture is what the build action writes: two Sigstore attestations, each in log-a, log-b, log-c', () => {
    expect(receipts.imageDigest).toBe(imageDigest);
    expect(receipts.attestations.map((g) => g.logEntries.map((e) => e.logId))).toEqual([['log-a', 'log-b', 'log-c'], ['log-a', 'log-b', 'log-c']]);
    expect(receipts.attestations[0].logEntries[0].inclusionProof.hashes.length).toBeGreaterThan(0);
  });

  it('quorum 2 passes only because the VCS entries count (without the file: INSUFFICIENT_LOG_COVERAGE)', async () => {
    const r = await verify(signed, { quorum: 2 });
    expect(outcome(r)).toEqual({ decision: 'ALLOW', code: null });
    expect(r.evidence.attestations).toHaveLength(2);
    for (const a of r.evidence.attestations) {
      expect(a.logOperators).toEqual(['ct-test-rekor', 'operator-a', 'operator-b']);
      expect(a.logEntries.map((e) => `${e.kind}:${e.logId === 'log-a' || e.logId === 'log-b' ? e.logId : 'rekor'}`).sort()).toEqual(['rekor:rekor', 'vcs:log-a', 'vcs:log-b']);
    }
    expect(r.logEntriesVerified).toBe(2 + 4);
    expect(r.warnings.some((w) => w.includes('log-c') && w.includes('not in the trust store'))).toBe(true);
    expect(r.warnings.some((w) => w.includes(VCS_LOG_ENTRIES_PATH) && w.includes('no verifier reads'))).toBe(false);
    expect(outcome(await verify(signed, { quorum: 3 }))).toEqual({ decision: 'ALLOW', code: null });
    expect(outcome(await verify(signed, { quorum: 4 }))).toEqual({ decision: 'REJECT', code: 'INSUFFICIENT_LOG_COVERAGE' });

    const without = join(tmp.dir, 'without-receipts.ctp');
    await rewriteCtp(signed, without, { remove: [VCS_LOG_ENTRIES_PATH] });
    expect(outcome(await verify(without, { quorum: 2 }))).toEqual({ decision: 'REJECT', code: 'INSUFFICIENT_LOG_COVERAGE' });
    expect(outcome(await verify(without, { quorum: 1 }))).toEqual({ decision: 'ALLOW', code: null });
  });

  it('entries of logs the trust store does not list do not count', async () => {
    const none = await verify(signed, { logs: [], quorum: 2 });
    expect(outcome(none)).toEqual({ decision: 'REJECT', code: 'INSUFFICIENT_LOG_COVERAGE' });
    expect(none.warnings.filter((w) => w.includes('not in the trust store'))).toHaveLength(6);
    // Only log-a is trusted: Rekor + operator-a = 2, not 3 (log-b and log-c are unknown).
    expect(outcome(await verify(signed, { logs: [{ server: logA }], quorum: 2 }))).toEqual({ decision: 'ALLOW', code: null });
    expect(outcome(await verify(signed, { logs: [{ server: logA }], quorum: 3 }))).toEqual({ decision: 'REJECT', code: 'INSUFFICIENT_LOG_COVERAGE' });
    // An unknown log's entry relabelled as a trusted log's is checked with that log's key: rejected.
    const relabelled = await withReceipts((d) => {
      const g = d.attestations[0];
      g.logEntries = [g.logEntries[0], { ...g.logEntries[2], logId: 'log-b' }];
    });
    expect(outcome(await verify(relabelled, { quorum: 1 }))).toEqual({ decision: 'REJECT', code: 'LOG_PROOF_INVALID' });
    // One log twice for one attestation is not what a producer writes.
    const twice = await withReceipts((d) => (d.attestations[0].logEntries[2].logId = 'log-b'));
    expect(outcome(await verify(twice, { quorum: 1 }))).toEqual({ decision: 'REJECT', code: 'MALFORMED_BUNDLE' });
  });

  it('two logs of one operator count once', async () => {
    const r = await verify(signed, { logs: [{ server: logA }, { server: logB, operator: 'operator-a' }], quorum: 3 });
    expect(outcome(r)).toEqual({ decision: 'REJECT', code: 'INSUFFICIENT_LOG_COVERAGE' });
    expect(r.findings[0].details?.attestations).toEqual(expect.arrayContaining([expect.objectContaining({ operators: ['ct-test-rekor', 'operator-a'] })]));
  });
});

describe('keyless .ctp: what is wrong in vcs-log-entries.json is rejected, never ignored', () => {
  it('a tampered entry of a trusted log → LOG_PROOF_INVALID in every mode (root hash, path, SET, time, index)', async () => {
    const edits: ((d: VcsLogEntriesDocument) => void)[] = [
      (d) => {
        const p = d.attestations[0].logEntries[0].inclusionProof;
        p.rootHash = p.rootHash.replace(/^./, (c) => (c === '0' ? '1' : '0'));
      },
      (d) => {
        const p = d.attestations[1].logEntries[0].inclusionProof;
        p.hashes[0] = p.hashes[0].replace(/.$/, (c) => (c === '0' ? '1' : '0'));
      },
      (d) => (d.attestations[0].logEntries[1].signedEntryTimestamp = d.attestations[1].logEntries[1].signedEntryTimestamp),
      (d) => (d.attestations[1].logEntries[1].integratedTime = '2020-01-01T00:00:00Z'),
      (d) => {
        const e = d.attestations[0].logEntries[0];
        e.logIndex += 1;
        e.inclusionProof.logIndex += 1;
      },
    ];
    for (const edit of edits) {
      const p = await withReceipts(edit);
      for (const mode of ['strict', 'permissive', 'audit'] as const) expect(outcome(await verify(p, { mode, quorum: 1 }))).toEqual({ decision: 'REJECT', code: 'LOG_PROOF_INVALID' });
    }
  });

  it('checked even when the Sigstore attestations are not (no identity policy)', async () => {
    const p = await withReceipts((d) => (d.attestations[0].logEntries[1].signedEntryTimestamp = d.attestations[1].logEntries[1].signedEntryTimestamp));
    expect(outcome(await verify(p, { identity: false, mode: 'permissive' }))).toEqual({ decision: 'REJECT', code: 'LOG_PROOF_INVALID' });
  });

  it('a tampered entry of an unknown log is not verified and not counted', async () => {
    const p = await withReceipts((d) => (d.attestations[0].logEntries[2].inclusionProof.rootHash = 'f'.repeat(64)));
    const r = await verify(p, { quorum: 3 });
    expect(outcome(r)).toEqual({ decision: 'ALLOW', code: null });
    expect(r.evidence.attestations.every((a) => !a.logOperators.includes('operator-c'))).toBe(true);
  });

  it('entries recorded for the other attestation → LOG_PROOF_INVALID', async () => {
    const swapped = await withReceipts((d) => {
      const [a, b] = d.attestations;
      [a.attestation, b.attestation] = [b.attestation, a.attestation];
    });
    expect(outcome(await verify(swapped, { quorum: 1 }))).toEqual({ decision: 'REJECT', code: 'LOG_PROOF_INVALID' });
    const moved = await withReceipts((d) => {
      const [a, b] = d.attestations;
      [a.logEntries, b.logEntries] = [b.logEntries, a.logEntries];
    });
    expect(outcome(await verify(moved, { quorum: 1 }))).toEqual({ decision: 'REJECT', code: 'LOG_PROOF_INVALID' });
  });

  it('a document that is not exactly the format → MALFORMED_BUNDLE; another image → SUBJECT_MISMATCH', async () => {
    const cases: [string, ((d: VcsLogEntriesDocument) => void) | Buffer, string][] = [
      ['not JSON', Buffer.from('{"mediaType": '), 'MALFORMED_BUNDLE'],
      ['media type', (d) => ((d as { mediaType: string }).mediaType = 'application/json'), 'MALFORMED_BUNDLE'],
      ['version', (d) => (d.version = '9.0.0'), 'MALFORMED_BUNDLE'],
      ['extra field', (d) => Object.assign(d.attestations[0].logEntries[0], { note: 'hi' }), 'MALFORMED_BUNDLE'],
      ['missing file', (d) => (d.attestations[0].attestation = 'attestations/missing.sigstore.json'), 'MALFORMED_BUNDLE'],
      ['not a Sigstore file', (d) => (d.attestations[0].attestation = 'attestations/bundle.json'), 'MALFORMED_BUNDLE'],
      ['listed twice', (d) => (d.attestations[1].attestation = d.attestations[0].attestation), 'MALFORMED_BUNDLE'],
      ['bad time', (d) => (d.attestations[0].logEntries[0].integratedTime = 'yesterday'), 'MALFORMED_BUNDLE'],
      ['SET not canonical base64', (d) => (d.attestations[0].logEntries[0].signedEntryTimestamp = d.attestations[0].logEntries[0].signedEntryTimestamp.replace(/==$/, '')), 'MALFORMED_BUNDLE'],
      ['another image', (d) => (d.imageDigest = sha256Digest('another image')), 'SUBJECT_MISMATCH'],
    ];
    for (const [what, edit, code] of cases) {
      const p = await withReceipts(edit);
      expect({ what, ...outcome(await verify(p, { quorum: 1, mode: 'audit' })) }).toEqual({ what, decision: 'REJECT', code });
    }
  });
});
