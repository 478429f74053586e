/**
 * The signed entry timestamp through the real entry point (test/sigstore/differential-canonical.test.ts
 * compares the payload itself): a mock-Sigstore DSSE bundle whose log entry's integratedTime and
 * logIndex are rewritten as a bundle may write them ("0…", "+…", "….0", "…e9", 2^53+1, 2^60, NaN)
 * and whose SET is re-signed by the mock log over the library's payload or over the int64 text as
 * written; bundleFromJSON, then FastPath.verify vs the unmodified @sigstore/verify Verifier. They
 * must decide alike (the Verifier runs on every acceptance of the fast path and one refusal in four).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { sign } from 'node:crypto';
import { bundleFromJSON, type Bundle } from '@sigstore/bundle';
import { TransparencyLogEntry, TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { signatureContent } from '@sigstore/verify/dist/bundle/index.js';
import { FastPath } from '../../src/verify/sigstore/fast-path.js';
import { signAttestationForCtp } from '../../src/sign/index.js';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { artifactDigest, keylessOptions, statementFor } from './fixtures.js';
import { rng } from './prng.js';
import { randomInt, signedTexts } from './int64-cases.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let m: SigstoreMock;
let dsse: Json;
beforeAll(async () => {
  m = await startSigstoreMock();
  dsse = (await signAttestationForCtp(statementFor(artifactDigest), keylessOptions(m, await m.githubToken()))) as Json;
});
afterAll(async () => { await m.close(); });

describe('the SET through the real entry point: FastPath.verify vs Verifier on re-signed bundles', () => {
  it('decides as the Verifier decides, for int64 values written every way', () => {
    const trust = toTrustMaterial(TrustedRoot.fromJSON(m.trustedRoot));
    const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });
    const fast = new FastPath(trust, verifier);
    const entry0 = dsse.verificationMaterial.tlogEntries[0] as Json;
    const it0 = Number(entry0.integratedTime);
    // Integrated times the leaf certificate is valid at (it lives minutes), written as a bundle may write them, and some it is not.
    const times: unknown[] = [it0, `0${it0}`, `+${it0}`, `${it0}.0`, `${it0 / 1e9}e9`, String(it0 - 1), `${it0}.5`, '0', 'NaN'];
    const r = rng(0xb0d1);
    const indexes: unknown[] = [entry0.logIndex, 0, '-1', '00', '+1', '1e3', '9007199254740993', 2 ** 60, 'NaN', randomInt(r)];
    const body = Buffer.from(entry0.canonicalizedBody as string, 'base64');
    const keyId = Buffer.from(entry0.logId.keyId as string, 'base64');
    const wrong: string[] = [];
    let compared = 0;
    let fastTaken = 0;
    let slowAccepted = 0;
    let verifierRuns = 0;
    for (const it of times) {
      for (const li of indexes) {
        const probe = TransparencyLogEntry.fromJSON({ integratedTime: it, logIndex: li });
        // The library's payload, and the int64 text as written.
        for (const t of signedTexts(body, keyId, probe.integratedTime, probe.logIndex).slice(0, 2)) {
          const json = structuredClone(dsse);
          const e = json.verificationMaterial.tlogEntries[0] as Json;
          e.integratedTime = it;
          e.logIndex = li;
          e.inclusionPromise.signedEntryTimestamp = sign('sha256', Buffer.from(t, 'utf8'), m.tlogKeys.privateKey).toString('base64');
          let b: Bundle;
          try {
            b = bundleFromJSON(json);
          } catch {
            continue;
          }
          compared++;
          const leaf = fast.verify(b, signatureContent(b), { tlog: 0, ctlog: 0, timestamps: 0 });
          if (leaf) fastTaken++;
          // The Verifier (~20 ms a bundle) on every acceptance of the fast path and one refusal in four.
          if (!leaf && compared % 4 !== 0) continue;
          verifierRuns++;
          let slow = true;
          try {
            verifier.verify(toSignedEntity(b));
          } catch {
            slow = false;
          }
          if (slow) slowAccepted++;
          if (Boolean(leaf) !== slow) wrong.push(`integratedTime ${JSON.stringify(it)}, logIndex ${JSON.stringify(li)}, text ${t.slice(-70)}: fast ${Boolean(leaf)}, Verifier ${slow}`);
        }
      }
    }
    expect(wrong).toEqual([]);
    expect(compared).toBe(times.length * indexes.length * 2);
    // Both verdicts occurred often enough for the comparison to mean something.
    expect(fastTaken).toBeGreaterThan(20);
    expect(verifierRuns - slowAccepted).toBeGreaterThan(20);
    console.log(`SET through FastPath: ${compared} bundles, fast path took ${fastTaken}, Verifier ran on ${verifierRuns} and accepted ${slowAccepted}`);
  });
});
