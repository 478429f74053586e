import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';
import {
  MerkleTree,
  assertLogEntry,
  attestationEntry,
  canonicalEntry,
  leafHash,
  signSet,
  verifyLogEntryRecord,
  verifySet,
  type LogEntry,
} from '../../src/tlog/index.js';
import { codeOf } from '../support/error-code.js';

const D = (c: string): string => `sha256:${c.repeat(64)}`;
const valid: LogEntry = {
  version: 1,
  timestamp: '2026-11-26T00:01:01Z',
  entryType: 'attestation',
  body: { attestationDigest: D('a'), subjectDigest: D('b'), predicateType: 'https://slsa.dev/provenance/v1' },
};
const revocation: LogEntry = {
  version: 1,
  timestamp: '2026-11-26T00:01:01Z',
  entryType: 'revocation',
  body: { revokedDigest: D('c'), reason: 'key_compromise', revokedBy: D('d'), revokedAt: '2026-11-26T00:00:00+01:00' },
};


function problems(v: unknown): string[] {
  try {
    assertLogEntry(v);
    return [];
  } catch (e) {
    return ((e as { details: { problems: { path: string }[] } }).details.problems ?? []).map((p) => p.path);
  }
}

describe('log entries', () => {
  it('accepts valid attestation and revocation entries', () => {
    expect(codeOf(() => assertLogEntry(valid))).toBeUndefined();
    expect(codeOf(() => assertLogEntry(revocation))).toBeUndefined();
  });

  // Each case changes exactly one thing in a valid entry.
  const bad: [string, unknown, string][] = [
    ['not an object', [], ''],
    ['version 2', { ...valid, version: 2 }, 'version'],
    ['version as string', { ...valid, version: '1' }, 'version'],
    ['timestamp not RFC 3339', { ...valid, timestamp: '2026-11-26 00:01:01' }, 'timestamp'],
    ['timestamp impossible date', { ...valid, timestamp: '2026-02-30T00:00:00Z' }, 'timestamp'],
    ['timestamp as number', { ...valid, timestamp: 1764115261 }, 'timestamp'],
    ['unknown entryType', { ...valid, entryType: 'note' }, 'entryType'],
    ['unknown top-level field', { ...valid, extra: 1 }, '.extra'],
    ['body missing', { ...valid, body: undefined }, 'body'],
    ['digest upper-case', { ...valid, body: { ...valid.body, subjectDigest: `sha256:${'A'.repeat(64)}` } }, 'body.subjectDigest'],
    ['digest short', { ...valid, body: { ...valid.body, attestationDigest: 'sha256:abc' } }, 'body.attestationDigest'],
    ['predicateType not a URI', { ...valid, body: { ...valid.body, predicateType: 'slsa provenance' } }, 'body.predicateType'],
    ['unknown body field', { ...valid, body: { ...valid.body, note: 'x' } }, 'body.note'],
    ['attestation body on a revocation', { ...revocation, body: valid.body }, 'body.revokedDigest'],
    ['unknown reason', { ...revocation, body: { ...revocation.body, reason: 'because' } }, 'body.reason'],
    ['revokedBy with spaces', { ...revocation, body: { ...revocation.body, revokedBy: 'alice smith' } }, 'body.revokedBy'],
    ['revokedAt not a date', { ...revocation, body: { ...revocation.body, revokedAt: 'yesterday' } }, 'body.revokedAt'],
  ];
  it.each(bad)('rejects %s with LOG_ENTRY_INVALID naming the field', (_name, v, path) => {
    expect(codeOf(() => assertLogEntry(v))).toBe('LOG_ENTRY_INVALID');
    expect(problems(v)).toContain(path);
  });

  it('reports every bad field at once', () => {
    const v = { version: 3, timestamp: 'x', entryType: 'attestation', body: { attestationDigest: 'x', subjectDigest: 'y', predicateType: '' } };
    expect(problems(v).sort()).toEqual(['body.attestationDigest', 'body.predicateType', 'body.subjectDigest', 'timestamp', 'version']);
  });

  it('canonical bytes are JCS (sorted keys, no spaces) whatever the input key order', () => {
    const shuffled = { body: { predicateType: valid.body.predicateType, subjectDigest: D('b'), attestationDigest: D('a') }, entryType: 'attestation', timestamp: valid.timestamp, version: 1 } as LogEntry;
    const bytes = canonicalEntry(shuffled).toString('utf8');
    expect(bytes).toBe(
      `{"body":{"attestationDigest":"${D('a')}","predicateType":"https://slsa.dev/provenance/v1","subjectDigest":"${D('b')}"},"entryType":"attestation","timestamp":"2026-11-26T00:01:01Z","version":1}`,
    );
    expect(canonicalEntry(valid).equals(canonicalEntry(shuffled))).toBe(true);
  });
});

describe('signed entry timestamps', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519').publicKey;
  const bytes = canonicalEntry(valid);
  const set = signSet(bytes, privateKey);

  it('verify with the log key over the canonical bytes only', () => {
    expect(verifySet(bytes, set, publicKey)).toBe(true);
    expect(verifySet(bytes, set, other)).toBe(false);
    expect(verifySet(canonicalEntry({ ...valid, timestamp: '2026-11-26T00:01:02Z' }), set, publicKey)).toBe(false);
  });

  it('reject non-canonical encodings of the signature', () => {
    expect(verifySet(bytes, set.replace(/=+$/, ''), publicKey)).toBe(false);
    expect(verifySet(bytes, ` ${set}`, publicKey)).toBe(false);
    expect(verifySet(bytes, Buffer.from(set, 'base64').toString('base64url'), publicKey)).toBe(false);
  });
});

describe('log entry records (bundle form)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const log = { operator: 'op', publicKey };
  const entries = Array.from({ length: 5 }, (_, i) => canonicalEntry({ ...valid, body: { ...valid.body, attestationDigest: D(String(i)) } }));
  const tree = new MerkleTree(entries);
  const recordFor = (i: number) => ({
    logId: 'test-log',
    logIndex: i,
    integratedTime: valid.timestamp,
    inclusionProof: { logIndex: i, rootHash: tree.root().toString('hex'), treeSize: 5, hashes: tree.inclusionProof(i).map((h) => h.toString('hex')) },
    signedEntryTimestamp: signSet(entries[i], privateKey),
  });

  it('verify when SET and inclusion proof are both right', () => {
    for (let i = 0; i < 5; i++) expect(verifyLogEntryRecord(recordFor(i), entries[i], log)).toMatchObject({ ok: true });
    expect(verifyLogEntryRecord(recordFor(2), entries[2], log)).toEqual({ ok: true, leafHash: leafHash(entries[2]) });
  });

  const mutations: [string, (r: ReturnType<typeof recordFor>) => unknown][] = [
    ['SET by another key', (r) => ({ ...r, signedEntryTimestamp: signSet(entries[2], generateKeyPairSync('ed25519').privateKey) })],
    ['SET of another entry', (r) => ({ ...r, signedEntryTimestamp: signSet(entries[3], privateKey) })],
    ['proof hash altered', (r) => ({ ...r, inclusionProof: { ...r.inclusionProof, hashes: [`0${r.inclusionProof.hashes[0].slice(1)}`, ...r.inclusionProof.hashes.slice(1)] } })],
    ['proof index differs', (r) => ({ ...r, logIndex: 3, inclusionProof: { ...r.inclusionProof, logIndex: 3 } })],
    ['record index differs from proof index', (r) => ({ ...r, logIndex: 3 })],
    // Only the root binds the size: index 2 has the same path shape in trees of 5 and 6 leaves
    // (RFC 9162 verification can't tell them apart), so alter it to a size with another shape.
    ['tree size altered', (r) => ({ ...r, inclusionProof: { ...r.inclusionProof, treeSize: 4 } })],
    ['tree size not above the index', (r) => ({ ...r, inclusionProof: { ...r.inclusionProof, treeSize: 2 } })],
    ['root altered', (r) => ({ ...r, inclusionProof: { ...r.inclusionProof, rootHash: 'f'.repeat(64) } })],
    ['hash not hex', (r) => ({ ...r, inclusionProof: { ...r.inclusionProof, hashes: ['zz'] } })],
    ['proof missing', (r) => ({ ...r, inclusionProof: undefined })],
    ['not an object', () => 'record'],
  ];
  it.each(mutations)('fail with LOG_PROOF_INVALID: %s', (_name, mutate) => {
    const res = verifyLogEntryRecord(mutate(recordFor(2)), entries[2], log);
    expect(res.ok).toBe(false);
    expect(!res.ok && res.code).toBe('LOG_PROOF_INVALID');
  });

  it('upstream adversarial vector (all-zero Merkle path) fails with LOG_PROOF_INVALID', () => {
    const v = JSON.parse(readFileSync(join(repoRoot, '../shared/reference/verified-container-spec/vectors/adversarial/proof/invalid-merkle-path.json'), 'utf8'));
    const res = verifyLogEntryRecord(v.input, entries[0], log);
    expect(res).toMatchObject({ ok: false, code: v.expected.errorCode });
  });
});

describe('upstream MVP compatibility (reference/samples/vcs-mvp/valid-mvp-hello)', () => {
  const dir = join(repoRoot, '../shared/reference/samples/vcs-mvp/valid-mvp-hello');
  const bundle = JSON.parse(readFileSync(join(dir, 'bundle.json'), 'utf8'));
  const trust = JSON.parse(readFileSync(join(dir, 'trust-store.json'), 'utf8'));
  const image = readFileSync(join(dir, 'image-digest.txt'), 'utf8').trim();

  it('each MVP log record verifies against the entry rebuilt as SPEC §4 says, matched by leaf hash', () => {
    const rebuilt = (env: { payload: string }, integratedTime: string) => {
      const st = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
      return canonicalEntry(attestationEntry(env, image, st.predicateType, integratedTime));
    };
    const matched = bundle.logEntries.map((rec: { logId: string; integratedTime: string; inclusionProof: { rootHash: string } }) => {
      const log = trust.logs[rec.logId];
      const hits = bundle.attestations.filter((env: { payload: string }) => leafHash(rebuilt(env, rec.integratedTime)).toString('hex') === rec.inclusionProof.rootHash);
      expect(hits).toHaveLength(1);
      expect(verifyLogEntryRecord(rec, rebuilt(hits[0], rec.integratedTime), log)).toMatchObject({ ok: true });
      return bundle.attestations.indexOf(hits[0]);
    });
    expect(matched.sort()).toEqual([0, 1]);
  });

  it('an MVP record does not verify for the other attestation or under another log key', () => {
    const rec = bundle.logEntries[0];
    const [a, b] = bundle.attestations.map((env: { payload: string }) => {
      const st = JSON.parse(Buffer.from(env.payload, 'base64').toString('utf8'));
      return canonicalEntry(attestationEntry(env, image, st.predicateType, rec.integratedTime));
    });
    const log = trust.logs[rec.logId];
    const results = [verifyLogEntryRecord(rec, a, log), verifyLogEntryRecord(rec, b, log)];
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    const builderKey = { operator: 'x', publicKey: trust.keys.builders[0].publicKey };
    expect(verifyLogEntryRecord(rec, a, builderKey).ok || verifyLogEntryRecord(rec, b, builderKey).ok).toBe(false);
  });
});
