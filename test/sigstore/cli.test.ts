import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { mkdtemp, rm, writeFile, readFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { bundleFromJSON } from '@sigstore/bundle';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { runCt } from '../support/cli.js';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { signAttestationForCtp, type SerializedBundle } from '../../src/sign/index.js';
import { publicGoodSeed, SigstoreBundleVerifier, trustedRootFromJSON } from '../../src/verify/sigstore/index.js';
import { sha256Digest } from '../../src/core/digest.js';
import { GH_ISSUER, GH_SAN, ecKey, keylessOptions, samplesDir, statementFor } from './fixtures.js';

const SAMPLES = samplesDir();
const BEACON = 'https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main';

let m: SigstoreMock;
let dir: string;
let rootPath: string;
let file: string;
let emptyCache: string;

beforeAll(async () => {
  m = await startSigstoreMock();
  dir = await mkdtemp(join(tmpdir(), 'ct-sigstore-cli-'));
  rootPath = join(dir, 'trusted_root.json');
  await writeFile(rootPath, JSON.stringify(m.trustedRoot));
  file = join(dir, 'artifact.txt');
  await writeFile(file, 'hello from cerro torre\n');
  emptyCache = join(dir, 'empty-cache');
});
afterAll(async () => {
  await m.close();
  await rm(dir, { recursive: true, force: true });
});

const env = () => ({ CT_SIGSTORE_CACHE: emptyCache, ACTIONS_ID_TOKEN_REQUEST_URL: '', ACTIONS_ID_TOKEN_REQUEST_TOKEN: '', SIGSTORE_ID_TOKEN: '' });
const services = () => ['--fulcio-url', m.fulcioURL, '--rekor-url', m.rekorURL, '--tsa-url', m.tsaURL, '--timeout', '20000'];
const identity = ['--certificate-identity', GH_SAN, '--certificate-oidc-issuer', GH_ISSUER];

/** Exit code 0, with the command's stderr in the failure message when it is not. */
function expectOk(r: { code: number; stderr: string }): void {
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr }).toEqual({ code: 0, stderr: '' });
}

async function verifyBundle(bundle: string, target: string, extra: string[] = identity, root: string[] = ['--trusted-root', rootPath]) {
  return runCt(['verify-bundle', '--bundle', bundle, ...extra, ...root, target], { env: env() });
}

describe('ct sign-bundle → ct verify-bundle (conformance protocol)', () => {
  it('message signature and --in-toto DSSE, keyless with --identity-token; FILE or sha256 digest', async () => {
    const token = await m.githubToken();
    const msg = join(dir, 'msg.sigstore.json');
    const s1 = await runCt(['sign-bundle', '--identity-token', token, '--bundle', msg, ...services(), file], { env: env() });
    expectOk(s1);
    expect(JSON.parse(await readFile(msg, 'utf8')).mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
    const [byFile, byDigest] = await Promise.all([verifyBundle(msg, file), verifyBundle(msg, sha256Digest(await readFile(file)))]);
    expectOk(byFile);
    expectOk(byDigest);

    const stmtPath = join(dir, 'statement.json');
    const digest = sha256Digest(await readFile(file));
    await writeFile(stmtPath, JSON.stringify(statementFor(digest)));
    const att = join(dir, 'att.sigstore.json');
    const s2 = await runCt(['sign-bundle', '--in-toto', '--identity-token', token, '--bundle', att, ...services(), stmtPath], { env: env() });
    expectOk(s2);
    const v1 = await verifyBundle(att, file);
    expectOk(v1);
    expect(v1.stdout).toContain(GH_SAN);
    const v2 = await verifyBundle(att, digest, [...identity, '--json']);
    expectOk(v2);
    expect(JSON.parse(v2.stdout)).toMatchObject({ verified: true, kind: 'dsse', digest, signer: { subject: GH_SAN } });
  });

  it('takes the token from the GitHub Actions token endpoint, or GitLab SIGSTORE_ID_TOKEN', async () => {
    const gh = join(dir, 'gha.sigstore.json');
    const r1 = await runCt(['sign-bundle', '--bundle', gh, ...services(), file], {
      env: { ...env(), ACTIONS_ID_TOKEN_REQUEST_URL: m.ghaTokenRequestURL, ACTIONS_ID_TOKEN_REQUEST_TOKEN: m.ghaTokenRequestToken },
    });
    expectOk(r1);
    expect(m.hits['GET /gha/token']).toBeGreaterThan(0);
    const verifier = new SigstoreBundleVerifier({ trustedRoot: trustedRootFromJSON(m.trustedRoot, 'mock') });
    const artifact = await readFile(file);
    expect(verifier.verify(await readFile(gh), { policy: { issuer: GH_ISSUER, subject: GH_SAN }, artifact }).signer.subject).toBe(GH_SAN);

    const gl = join(dir, 'gitlab.sigstore.json');
    const r2 = await runCt(['sign-bundle', '--bundle', gl, ...services(), file], { env: { ...env(), SIGSTORE_ID_TOKEN: await m.gitlabToken() } });
    expectOk(r2);
    const glIdentity = ['--certificate-identity', 'https://gitlab.com/acme-group/app//.gitlab-ci.yml@refs/heads/main', '--certificate-oidc-issuer', 'https://gitlab.com'];
    const [pinned, otherId] = await Promise.all([
      verifyBundle(gl, file, [...glIdentity, '--certificate-claim', 'repositoryId=20020']),
      verifyBundle(gl, file, [...glIdentity, '--certificate-claim', 'repositoryId=1']),
    ]);
    expectOk(pinned);
    expect(otherId.code).toBe(3);
  });

  it('no token anywhere → a usage error, nothing written', async () => {
    const out = join(dir, 'none.sigstore.json');
    const r = await runCt(['sign-bundle', '--bundle', out, ...services(), file], { env: env() });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[USAGE]');
    await expect(readFile(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('with a key: --key on both sides', async () => {
    const { privateKey, publicKey } = ecKey();
    const priv = join(dir, 'k.pem');
    const pub = join(dir, 'k.pub');
    await writeFile(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(pub, publicKey.export({ type: 'spki', format: 'pem' }));
    const out = join(dir, 'key.sigstore.json');
    expectOk(await runCt(['sign-bundle', '--key', priv, '--rekor-url', m.rekorURL, '--bundle', out, file], { env: env() }));
    expectOk(await verifyBundle(out, file, ['--key', pub]));
    const { publicKey: other } = ecKey();
    await writeFile(pub, other.export({ type: 'spki', format: 'pem' }));
    expect((await verifyBundle(out, file, ['--key', pub])).code).toBe(2);
  });
});

describe('ct verify-bundle: bundle versions, public-good samples, rejections', () => {
  let v03: SerializedBundle;
  let digest: string;
  beforeAll(async () => {
    digest = sha256Digest(await readFile(file));
    v03 = await signAttestationForCtp(statementFor(digest), keylessOptions(m, await m.githubToken()));
  });

  it('accepts v0.1, v0.2, legacy-named v0.3 and v0.3 bundles made here', async () => {
    const chain = { x509CertificateChain: { certificates: [v03.verificationMaterial.certificate] } };
    const shapes: Record<string, unknown> = {
      'v0.1': { ...v03, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1', verificationMaterial: { ...chain, tlogEntries: v03.verificationMaterial.tlogEntries, timestampVerificationData: v03.verificationMaterial.timestampVerificationData } },
      'v0.2': { ...v03, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.2', verificationMaterial: { ...chain, tlogEntries: v03.verificationMaterial.tlogEntries, timestampVerificationData: v03.verificationMaterial.timestampVerificationData } },
      'v0.3-legacy': { ...v03, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.3' },
      'v0.3': v03,
    };
    await Promise.all(Object.entries(shapes).map(async ([name, b]) => {
      const p = join(dir, `${name}.sigstore.json`);
      await writeFile(p, JSON.stringify(b));
      const r = await verifyBundle(p, file, [...identity, '--json']);
      expect({ name, code: r.code, err: r.stderr }).toMatchObject({ name, code: 0 });
      expect(JSON.parse(r.stdout).mediaType).toBe((b as { mediaType: string }).mediaType);
    }));
  });

  it('verifies the public-good samples offline with the root shipped in @sigstore/tuf', async () => {
    const a = join(SAMPLES, 'a.txt');
    const beacon = ['--certificate-identity', BEACON, '--certificate-oidc-issuer', GH_ISSUER];
    const sampleRuns = ['happy-path-v0.3', 'happy-path-intoto-in-dsse-v3'].map(async (s) => {
      const r = await verifyBundle(join(SAMPLES, s, 'bundle.sigstore.json'), a, [...beacon, '--json'], []);
      expect({ s, code: r.code, err: r.stderr }).toMatchObject({ s, code: 0 });
      expect(JSON.parse(r.stdout).trustedRoot).toBe('seed:@sigstore/tuf');
    });
    const aDigest = sha256Digest(await readFile(a));
    const [dsse, otherId, mockRoot] = await Promise.all([
      verifyBundle(join(SAMPLES, 'happy-path-intoto-in-dsse-v3', 'bundle.sigstore.json'), aDigest, beacon, []),
      // The same sample for a different identity, or against the mock root, is refused.
      verifyBundle(join(SAMPLES, 'happy-path-v0.3', 'bundle.sigstore.json'), a, ['--certificate-identity-regexp', 'sigstore-conformance', '--certificate-oidc-issuer', GH_ISSUER], []),
      verifyBundle(join(SAMPLES, 'happy-path-v0.3', 'bundle.sigstore.json'), a, beacon),
      ...sampleRuns,
    ]);
    expectOk(dsse);
    expect(otherId.code).toBe(3);
    expect(mockRoot.code).toBe(3);
  });

  it('rejects a DSSE bundle whose subject differs from the artifact, which plain @sigstore/verify accepts', async () => {
    const p = join(dir, 'subject.sigstore.json');
    await writeFile(p, JSON.stringify(v03));
    const other = join(dir, 'other.txt');
    await writeFile(other, 'not the attested artifact\n');
    const r = await verifyBundle(p, other);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('error[SUBJECT_MISMATCH]');
    const plain = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(m.trustedRoot)));
    expect(plain.verify(toSignedEntity(bundleFromJSON(v03)), { subjectAlternativeName: GH_SAN, extensions: { issuer: GH_ISSUER } }).identity?.subjectAlternativeName).toBe(GH_SAN);
  });

  it('wrong identity, unanchored-only pattern, foreign root: exit 3 with the actual SAN shown', async () => {
    const p = join(dir, 'id.sigstore.json');
    await writeFile(p, JSON.stringify(v03));
    const [wrong, loose, anchored, foreign] = await Promise.all([
      verifyBundle(p, file, ['--certificate-identity', 'https://github.com/acme/app2/.github/workflows/release.yml@refs/heads/main', '--certificate-oidc-issuer', GH_ISSUER]),
      verifyBundle(p, file, ['--certificate-identity-regexp', 'acme/app', '--certificate-oidc-issuer', GH_ISSUER]),
      verifyBundle(p, file, ['--certificate-identity-regexp', 'https://github\\.com/acme/app/.+', '--certificate-oidc-issuer', GH_ISSUER]),
      verifyBundle(p, file, identity, []),
    ]);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('error[IDENTITY_MISMATCH]');
    expect(wrong.stderr).toContain(GH_SAN);
    expect(loose.code).toBe(3);
    expect(loose.stderr).toContain('error[IDENTITY_MISMATCH]');
    expectOk(anchored);
    expect(foreign.code).toBe(3);
    expect(foreign.stderr).toContain('error[UNTRUSTED_ROOT]');
    expect(foreign.stderr).toContain(GH_SAN);
  });

  it('usage and hostile input: no identity, bad digest, malformed bundle', async () => {
    const p = join(dir, 'usage.sigstore.json');
    await writeFile(p, JSON.stringify(v03));
    const bad = join(dir, 'bad.sigstore.json');
    await writeFile(bad, '{"mediaType": 1}');
    const [noId, r, missing] = await Promise.all([verifyBundle(p, file, []), verifyBundle(bad, file), verifyBundle(join(dir, 'missing.json'), file)]);
    expect(noId.code).toBe(1);
    expect(r.code).toBe(10);
    expect(r.stderr).toContain('error[MALFORMED_BUNDLE]');
    expect(missing.code).toBe(11);
  });
});

describe('ct trust update (offline only: the mirror is a 127.0.0.1 port that refuses)', () => {
  async function refusingUrl(): Promise<string> {
    const srv = createServer();
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((r) => srv.close(() => r()));
    return `http://127.0.0.1:${port}`;
  }

  it('without a cache: keeps the shipped root, reports it was never refreshed, exit 0', async () => {
    const cache = join(dir, 'trust-seed');
    const r = await runCt(['trust', 'update', '--mirror', await refusingUrl(), '--allow-address', '127.0.0.1', '--cache-dir', cache, '--timeout', '2000', '--json'], { env: env() });
    expectOk(r);
    expect(JSON.parse(r.stdout)).toMatchObject({ updated: false, offline: true, source: 'seed', ageSeconds: null });
  });

  it('with a cached root: uses it and reports its age', async () => {
    const cache = join(dir, 'trust-cached');
    await mkdir(cache, { recursive: true });
    await writeFile(join(cache, 'trusted_root.json'), publicGoodSeed().trustedRoot);
    const updatedAt = new Date(Date.now() - 3 * 86400_000).toISOString();
    await writeFile(join(cache, 'trust-state.json'), JSON.stringify({ updatedAt, mirror: 'https://tuf-repo-cdn.sigstore.dev', digest: 'x' }));
    const [r, status] = await Promise.all([
      runCt(['trust', 'update', '--mirror', await refusingUrl(), '--allow-address', '127.0.0.1', '--cache-dir', cache, '--timeout', '2000', '--json'], { env: env() }),
      runCt(['trust', 'status', '--cache-dir', cache, '--json'], { env: env() }),
    ]);
    expectOk(r);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ updated: false, offline: true, source: 'cache', updatedAt });
    expect(Math.abs(out.ageSeconds - 3 * 86400)).toBeLessThan(120);
    expect(r.stderr).toContain('3 days old');
    expect(JSON.parse(status.stdout).source).toBe(`cache:${join(cache, 'trusted_root.json')}`);
  });

  it('refuses a loopback mirror unless the address is allowed', async () => {
    const r = await runCt(['trust', 'update', '--mirror', await refusingUrl(), '--cache-dir', join(dir, 'trust-refused'), '--json'], { env: env() });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('REGISTRY_NOT_ALLOWED');
  });
});
