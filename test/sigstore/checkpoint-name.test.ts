/**
 * A checkpoint's signature lines are unsigned text, and @sigstore/verify compiles a line's name as a
 * regular expression when its key hint is a trusted log's (tlog-inclusion.ts checkpointHazard): such
 * a line naming a backtracking pattern is refused at once, before either verification path runs, as
 * is a checkpoint with too many lines; witness lines (other hints) may name anything the signed-note
 * format allows, and real log names verify.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signAttestationForCtp, type SerializedBundle } from '../../src/sign/index.js';
import { SigstoreBundleVerifier } from '../../src/verify/sigstore/verifier.js';
import { checkpointHazard, MAX_CHECKPOINT_SIGNATURES } from '../../src/verify/sigstore/tlog-inclusion.js';
import type { CtError } from '../../src/core/errors.js';
import { artifactDigest, GH_ISSUER, GH_SAN, keylessOptions, rootOf, statementFor } from './fixtures.js';

let m: SigstoreMock;
let dsse: SerializedBundle;
let ownHint: Buffer;
// Not the first 4 bytes of any trusted log's id (checked in beforeAll): a witness's key hint.
const witnessHint = Buffer.from([0xde, 0xad, 0xbe, 0xef]);
beforeAll(async () => {
  m = await startSigstoreMock();
  dsse = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()));
  ownHint = Buffer.from((dsse as Json).verificationMaterial.tlogEntries[0].logId.keyId, 'base64').subarray(0, 4);
  for (const t of rootOf(m).root.tlogs) expect(Buffer.from(t.logId!.keyId).subarray(0, 4).equals(witnessHint)).toBe(false);
});
afterAll(async () => { await m.close(); });

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const line = (name: string, hint: Buffer) => `\u2014 ${name} ${Buffer.concat([hint, Buffer.alloc(64, 1)]).toString('base64')}\n`;

/** The bundle with more signature lines before its own (the library tries them in order). */
function withLines(lines: string[]): string {
  const b = structuredClone(dsse) as Json;
  const entry = b.verificationMaterial.tlogEntries[0];
  const env: string = entry.inclusionProof.checkpoint.envelope;
  const at = env.indexOf('\n\n') + 2;
  entry.inclusionProof.checkpoint.envelope = env.slice(0, at) + lines.join('') + env.slice(at);
  return JSON.stringify(b);
}

function verify(text: string) {
  const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), cacheSize: 0 });
  return v.verify(text, { policy: { issuer: GH_ISSUER, subject: GH_SAN }, digest: artifactDigest });
}

function refusal(text: string): { err: CtError | undefined; ms: number } {
  const started = process.hrtime.bigint();
  let err: CtError | undefined;
  try {
    verify(text);
  } catch (e) {
    err = e as CtError;
  }
  return { err, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

const REAL_NAMES = () => ['rekor.sigstore.dev', 'log2025-1.rekor.sigstore.dev', 'witness.stagemole.eu', 'staging.witness.transparency.goog/ring-any-bells', new URL(m.rekorURL).host];

describe('checkpoint signature names', () => {
  it('refuses a backtracking pattern on a line with a trusted log\'s hint at once, with LOG_PROOF_INVALID', () => {
    // Without the check this bundle verifies, after ~75 s of regular-expression backtracking.
    const { err, ms } = refusal(withLines([line('(.*)*x', ownHint)]));
    expect(err?.code).toBe('LOG_PROOF_INVALID');
    expect(err?.details).toMatchObject({ where: 'tlogEntries[0].inclusionProof.checkpoint', name: '(.*)*x' });
    expect(ms).toBeLessThan(2000);
  });

  it('verifies witness cosignature lines whose names are no log names (other key hints are never compiled)', () => {
    const unusual = ['witness@example.org', 'example.org~log', 'a=b', 'bücher.example', '(.*)*x'];
    expect(verify(withLines(unusual.map((n) => line(n, witnessHint)))).signer.kind).toBe('keyless');
  });

  it('verifies real log names, on its own log\'s hint and a witness\'s', () => {
    expect(verify(JSON.stringify(dsse)).signer.kind).toBe('keyless');
    expect(verify(withLines(REAL_NAMES().map((n) => line(n, ownHint)))).signer.kind).toBe('keyless');
    expect(verify(withLines(REAL_NAMES().map((n) => line(n, witnessHint)))).signer.kind).toBe('keyless');
  });

  it(`refuses more than ${MAX_CHECKPOINT_SIGNATURES} signature lines, and takes ${MAX_CHECKPOINT_SIGNATURES}`, () => {
    // The bundle's own line is the last one.
    const extra = (n: number) => Array.from({ length: n }, (_, i) => line(`witness${i}.example`, i % 2 ? ownHint : witnessHint));
    expect(verify(withLines(extra(MAX_CHECKPOINT_SIGNATURES - 1))).signer.kind).toBe('keyless');
    const { err } = refusal(withLines(extra(MAX_CHECKPOINT_SIGNATURES)));
    expect(err?.code).toBe('LOG_PROOF_INVALID');
    expect(err?.details).toMatchObject({ where: 'tlogEntries[0].inclusionProof.checkpoint', limit: MAX_CHECKPOINT_SIGNATURES });
  });

  it('reads the lines as the library does, and bounds what it names', () => {
    const logs = [{ logID: Buffer.concat([ownHint, Buffer.alloc(28)]) }];
    const note = 'origin\n1\nhash\n\n';
    const sig = (hint: Buffer) => Buffer.concat([hint, Buffer.alloc(8, 7)]).toString('base64');
    expect(checkpointHazard(note + REAL_NAMES().map((n) => `\u2014 ${n} ${sig(ownHint)}\n`).join(''), logs)).toBeUndefined();
    for (const c of '\\^$|?*+()[]{}') {
      expect(checkpointHazard(`${note}\u2014 a${c}b ${sig(ownHint)}\n`, logs)).toEqual({ reason: 'name', name: `a${c}b` });
      expect(checkpointHazard(`${note}\u2014 a${c}b ${sig(witnessHint)}\n`, logs)).toBeUndefined();
    }
    expect(checkpointHazard(`${note}\u2014 ${'a'.repeat(253)} ${sig(ownHint)}\n`, logs)).toBeUndefined();
    expect(checkpointHazard(`${note}\u2014 ${'a'.repeat(254)} ${sig(ownHint)}\n`, logs)).toEqual({ reason: 'name', name: 'a'.repeat(100) });
    const many = (n: number) => note + `\u2014 w.example ${sig(witnessHint)}\n`.repeat(n);
    expect(checkpointHazard(many(MAX_CHECKPOINT_SIGNATURES), logs)).toBeUndefined();
    expect(checkpointHazard(many(MAX_CHECKPOINT_SIGNATURES + 1), logs)).toEqual({ reason: 'count', limit: MAX_CHECKPOINT_SIGNATURES });
    // Above the separator nothing is a signature line (the note itself is signed).
    expect(checkpointHazard(`origin\n\u2014 (a+)+ ${sig(ownHint)}\n`, logs)).toBeUndefined();
  });
});
