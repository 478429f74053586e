/**
 * A checkpoint's signature lines are unsigned text, and @sigstore/verify compiles each line's name
 * as a regular expression (tlog-inclusion.ts unsafeCheckpointName): a bundle whose checkpoint names
 * a backtracking pattern is refused at once, before either verification path runs; plain log
 * names, the bundle's own and another log's, still verify.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signAttestationForCtp, type SerializedBundle } from '../../src/sign/index.js';
import { SigstoreBundleVerifier } from '../../src/verify/sigstore/verifier.js';
import { unsafeCheckpointName } from '../../src/verify/sigstore/tlog-inclusion.js';
import type { CtError } from '../../src/core/errors.js';
import { artifactDigest, GH_ISSUER, GH_SAN, keylessOptions, rootOf, statementFor } from './fixtures.js';

let m: SigstoreMock;
let dsse: SerializedBundle;
beforeAll(async () => {
  m = await startSigstoreMock();
  dsse = await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()));
});
afterAll(async () => { await m.close(); });

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The bundle with one more signature line, named `name`, before its own (the library tries them in order). */
function withLine(name: string): string {
  const b = structuredClone(dsse) as Json;
  const entry = b.verificationMaterial.tlogEntries[0];
  const env: string = entry.inclusionProof.checkpoint.envelope;
  // The key hint of the bundle's own log, so the library reaches the name match.
  const hint = Buffer.from(entry.logId.keyId, 'base64').subarray(0, 4);
  const line = `\u2014 ${name} ${Buffer.concat([hint, Buffer.alloc(64, 1)]).toString('base64')}\n`;
  const at = env.indexOf('\n\n') + 2;
  entry.inclusionProof.checkpoint.envelope = env.slice(0, at) + line + env.slice(at);
  return JSON.stringify(b);
}

function verify(text: string) {
  const v = new SigstoreBundleVerifier({ trustedRoot: rootOf(m), cacheSize: 0 });
  return v.verify(text, { policy: { issuer: GH_ISSUER, subject: GH_SAN }, digest: artifactDigest });
}

describe('checkpoint signature names', () => {
  it('refuses a backtracking pattern at once, with LOG_PROOF_INVALID', () => {
    // Without the check this bundle verifies, after ~75 s of regular-expression backtracking.
    const started = process.hrtime.bigint();
    let err: CtError | undefined;
    try {
      verify(withLine('(.*)*x'));
    } catch (e) {
      err = e as CtError;
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(err?.code).toBe('LOG_PROOF_INVALID');
    expect(err?.details).toMatchObject({ where: 'tlogEntries[0].inclusionProof.checkpoint', name: '(.*)*x' });
    expect(ms).toBeLessThan(2000);
  });

  it('still verifies plain log names, its own and another log\'s', () => {
    expect(verify(JSON.stringify(dsse)).signer.kind).toBe('keyless');
    expect(verify(withLine('rekor.example.org')).signer.kind).toBe('keyless');
  });

  it('reads the lines as the library does, and bounds what it names', () => {
    expect(unsafeCheckpointName('origin\n1\nhash\n\n\u2014 rekor.sigstore.dev AAAA\n\u2014 127.0.0.1:3000/api AAAA\n')).toBeUndefined();
    expect(unsafeCheckpointName('origin\n1\nhash\n\n\u2014 rekor.sigstore.dev AAAA\n\u2014 a|b AAAA\n')).toBe('a|b');
    expect(unsafeCheckpointName(`origin\n1\nhash\n\n\u2014 ${'a'.repeat(300)} AAAA\n`)).toBe('a'.repeat(100));
    // Above the separator nothing is a signature line (the note itself is signed).
    expect(unsafeCheckpointName('origin\n\u2014 (a+)+ AAAA\n')).toBeUndefined();
  });
});
