/** Shared setup of the Sigstore tests: a mock deployment, signing options, statements. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { sha256Digest } from '../../src/core/digest.js';
import { buildStatement } from '../../src/attest/statement.js';
import type { SigstoreSignOptions } from '../../src/sign/index.js';
import { trustedRootFromJSON } from '../../src/verify/sigstore/index.js';
import type { SigstoreMock } from '../support/sigstore-mock.js';
import { openCtp } from '../../src/bundle/read.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { coveredFiles } from '../../src/attest/sign-ctp.js';
import { ctpSubjects } from '../../src/attest/statement.js';
import { signAttestationForCtp } from '../../src/sign/index.js';
import { DEFAULT_PREDICATES } from '../verify/fixtures.js';
import { ctpFiles } from '../verify/ctp-fixtures.js';
import { writeCtp } from '../../src/bundle/write.js';

export const GH_SAN = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';
export const GH_ISSUER = 'https://token.actions.githubusercontent.com';

export function keylessOptions(m: SigstoreMock, identityToken: string, extra: Partial<SigstoreSignOptions> = {}): SigstoreSignOptions {
  return { identityToken, fulcioURL: m.fulcioURL, rekorURL: m.rekorURL, tsaURL: m.tsaURL, timeoutMs: 20_000, retries: 1, ...extra };
}

export function rootOf(m: SigstoreMock) {
  return trustedRootFromJSON(m.trustedRoot, 'mock');
}

export const artifact = Buffer.from('cerro torre image manifest\n');
export const artifactDigest = sha256Digest(artifact);

export function statementFor(digest: string, predicateType = 'https://slsa.dev/provenance/v1') {
  return buildStatement([{ name: 'registry.example/acme/app', digest: { sha256: digest.slice(7) } }], predicateType, { buildDefinition: { buildType: 'test' } });
}

export const ecKey = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });
export const edKey = () => generateKeyPairSync('ed25519');

/**
 * The public-good sample bundles of ../shared/reference, looked for next to the checkout and next
 * to its parent (a worktree under /work/wt/<name> has the shared directory two levels up).
 */
export function samplesDir(): string {
  const tries = [join(process.cwd(), '..', 'shared'), join(process.cwd(), '..', '..', 'shared')].map((d) => join(d, 'reference', 'samples', 'sigstore'));
  return tries.find((d) => existsSync(d)) ?? tries[0];
}

/**
 * Signs an unsigned .ctp keylessly, as the build action does without a key: SLSA provenance and an
 * SPDX document, each a Sigstore bundle under attestations/ naming the image and every covered file.
 */
export async function signCtpKeyless(m: SigstoreMock, unsigned: string, out: string, identityToken?: string): Promise<void> {
  const archive = await openCtp(unsigned);
  const image = checkOciLayout(archive);
  const subjects = ctpSubjects('hello:1.0', image.manifestDigest, coveredFiles(archive));
  const token = identityToken ?? (await m.githubToken());
  const add: Record<string, Buffer> = {};
  for (const [i, p] of DEFAULT_PREDICATES.entries()) {
    const bundle = await signAttestationForCtp(buildStatement(subjects, p.type, p.predicate), keylessOptions(m, token));
    add[`attestations/${i === 0 ? 'provenance' : 'sbom'}.sigstore.json`] = Buffer.from(JSON.stringify(bundle));
  }
  await rewriteCtp(unsigned, out, { add });
}

/** A small test .ctp (ctpFiles) signed keylessly: `<dir>/<name>.ctp`, from `<dir>/<name>-unsigned.ctp`. */
export async function writeKeylessCtp(m: SigstoreMock, dir: string, name = 'signed'): Promise<string> {
  const unsigned = join(dir, `${name}-unsigned.ctp`);
  await writeCtp(unsigned, ctpFiles().files);
  const out = join(dir, `${name}.ctp`);
  await signCtpKeyless(m, unsigned, out);
  return out;
}
