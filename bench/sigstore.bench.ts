/**
 * Sigstore verification throughput (issue 3 "Speed", #14 target 1): keyless v0.3 DSSE bundles signed
 * by the mock Sigstore services (127.0.0.1, keys per run; the Fulcio CA on P-384 as public-good's, so
 * each bundle needs the one P-384 leaf check #14 counts, the CT log, Rekor and TSA keys P-256), verified
 * - by @sigstore/verify with its trust material and Verifier built once and reused (#14's baseline);
 * - the naive way: a TrustedRoot, trust material and @sigstore/verify Verifier built for every bundle;
 * - cold, ours: one SigstoreBundleVerifier (trust material and Verifier built once, its construction
 *   included in the time), every bundle new to it, with everything @sigstore/verify leaves out
 *   (anchored identity, decoded claims, in-toto subject);
 * - cached, ours: the same bundles again (SPEC §4 cache key).
 * Every timed section starts after a full garbage collection (both sides alike; see collectGarbage).
 * The test-support mock is TypeScript outside build/: it is transpiled next to build/src first.
 */
import { generateKeyPairSync, sign, verify as cryptoVerify } from 'node:crypto';
import { build } from 'esbuild';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import type { BenchResult } from './harness.js';
import { signAttestationForCtp } from '../src/sign/index.js';
import { SigstoreBundleVerifier, trustedRootFromJSON } from '../src/verify/sigstore/index.js';
import { buildStatement } from '../src/attest/statement.js';
import { sha256Digest } from '../src/core/digest.js';

const BUNDLES = 100;
const ISSUER = 'https://token.actions.githubusercontent.com';
const SAN = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';

// build/bench/sigstore.bench.js → repository root
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

async function loadMock(): Promise<typeof import('../test/support/sigstore-mock.js')> {
  const files = ['sigstore-mock.ts', 'sigstore-oidc.ts', 'sigstore-rekor2.ts'].map((f) => join(repoRoot, 'test', 'support', f));
  await build({ entryPoints: files, outdir: join(repoRoot, 'build'), outbase: repoRoot, format: 'esm', platform: 'node', target: 'node20', logLevel: 'warning' });
  return import(pathToFileURL(join(repoRoot, 'build', 'test', 'support', 'sigstore-mock.js')).href);
}

function throughput(n: number, ms: number): number {
  return (n * 1000) / ms;
}

/**
 * A full collection before every timed section, ours and the baselines' alike: the library loops
 * allocate heavily, and without it the next section (whichever it is) pays for collecting their
 * garbage. bench/run.ts starts each module with --expose-gc; run alone, the flag is set here.
 */
const collectGarbage: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

/**
 * CPU time (user + system) of the loop, in ms: "on one core" as #14 asks, and far steadier than wall
 * time on a machine shared with other work (a descheduled process is not charged).
 */
function timed(fn: () => void): number {
  collectGarbage();
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

export async function run(): Promise<BenchResult[]> {
  const { startSigstoreMock } = await loadMock();
  const m = await startSigstoreMock({ caCurve: 'P-384' });
  try {
    const digest = sha256Digest('bench image');
    const statement = buildStatement([{ name: 'registry.example/acme/app', digest: { sha256: digest.slice(7) } }], 'https://slsa.dev/provenance/v1', { n: 0 });
    const texts: string[] = [];
    for (let i = 0; i < BUNDLES; i++) {
      const b = await signAttestationForCtp({ ...statement, predicate: { n: i } }, {
        identityToken: await m.githubToken(), fulcioURL: m.fulcioURL, rekorURL: m.rekorURL, tsaURL: m.tsaURL, timeoutMs: 10_000,
      });
      texts.push(JSON.stringify(b));
    }
    const rootJSON = m.trustedRoot;
    const policy = { issuer: ISSUER, subject: SAN };

    const reused = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(rootJSON)));
    const library = () => {
      for (const t of texts) reused.verify(toSignedEntity(bundleFromJSON(JSON.parse(t))), { subjectAlternativeName: SAN, extensions: { issuer: ISSUER } });
    };
    const naive = () => {
      for (const t of texts) {
        const verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(rootJSON)));
        verifier.verify(toSignedEntity(bundleFromJSON(JSON.parse(t))), { subjectAlternativeName: SAN, extensions: { issuer: ISSUER } });
      }
    };
    const cold = () => {
      const v = new SigstoreBundleVerifier({ trustedRoot: trustedRootFromJSON(rootJSON, 'bench'), cacheSize: 0 });
      for (const t of texts) v.verify(t, { policy, digest });
    };
    const warm = new SigstoreBundleVerifier({ trustedRoot: trustedRootFromJSON(rootJSON, 'bench') });
    for (const t of texts) warm.verify(t, { policy, digest });
    const cached = () => {
      for (const t of texts) warm.verify(t, { policy, digest });
    };

    // The signature checks each bundle needs, alone (keys imported once, 1.5 KB of data): one P-384
    // check (the leaf, by the CA) and five P-256 ones (SCT, TSA, SET, checkpoint, DSSE). What is
    // above this in `cold` is everything else; #14's 800/s leaves ~0.3 ms per bundle for it.
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const data = Buffer.alloc(1500, 7);
    const sig384 = sign('sha384', data, p384.privateKey);
    const sig256 = sign('sha256', data, p256.privateKey);
    const floor = () => {
      for (let i = 0; i < BUNDLES; i++) {
        cryptoVerify('sha384', data, p384.publicKey, sig384);
        for (let j = 0; j < 5; j++) cryptoVerify('sha256', data, p256.publicKey, sig256);
      }
    };

    // Warm-up, then the median of interleaved runs so machine load hits both sides alike.
    naive();
    cold();
    library();
    floor();
    const nT: number[] = [];
    const cT: number[] = [];
    const hT: number[] = [];
    const lT: number[] = [];
    const fT: number[] = [];
    for (let r = 0; r < 5; r++) {
      lT.push(timed(library));
      nT.push(timed(naive));
      cT.push(timed(cold));
      hT.push(timed(cached));
      fT.push(timed(floor));
    }
    const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
    const naiveTp = throughput(BUNDLES, med(nT));
    const coldTp = throughput(BUNDLES, med(cT));
    return [
      {
        name: 'sigstore distinct keyless bundles vs @sigstore/verify (trust material + Verifier reused)',
        value: coldTp,
        baseline: throughput(BUNDLES, med(lT)),
        unit: 'bundles/s',
        better: 'higher',
        target: { min: 4 },
        note: `${BUNDLES} bundles, CPU time, median of 5; ours also checks identity anchored, claims, in-toto subject`,
      },
      {
        name: 'sigstore distinct keyless bundles per CPU-second (one core)',
        value: coldTp,
        baseline: 800,
        unit: 'bundles/s',
        better: 'higher',
        target: { min: 1 },
        note: `baseline is #14's fixed target of 800/s, not a measurement; the signature checks alone (1 P-384 + 5 P-256) measured ${Math.round((med(fT) * 1000) / BUNDLES)} µs per bundle (${Math.round(throughput(BUNDLES, med(fT)))}/s) in this run, ours ${(med(cT) / med(fT)).toFixed(2)}× that`,
      },
      {
        name: 'sigstore cold verification (keyless v0.3 DSSE, trust material + Verifier reused)',
        value: coldTp,
        baseline: naiveTp,
        unit: 'bundles/s',
        better: 'higher',
        target: { min: 2 },
        note: `${BUNDLES} bundles; baseline builds trust material and a Verifier per bundle`,
      },
      {
        name: 'sigstore cached verification',
        value: throughput(BUNDLES, med(hT)),
        baseline: naiveTp,
        unit: 'bundles/s',
        better: 'higher',
        target: { min: 100 },
        note: 'same bundles, digest, trust and policy (SPEC §4 cache key)',
      },
    ];
  } finally {
    await m.close();
  }
}
