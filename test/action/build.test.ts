/**
 * The build action end to end, as a runner runs it: `node dist/index.js` in a child process with
 * INPUT_*, GITHUB_*, RUNNER_TEMP, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY and the Actions OIDC token
 * endpoint. examples/hello → .ctp signed keylessly by the test Sigstore (Fulcio, Rekor) and
 * logged in two VCS transparency logs → pushed to a real docker-registry → outputs, job summary,
 * commit status on the GitHub API stand-in (validated against GitHub's OpenAPI description).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { startOidcProvider, type OidcProvider } from '../support/oidc-provider.js';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { startLogServer, type LogServer } from '../../src/tlog/index.js';
import { addKey, addLog, newTrustStore } from '../../src/trust/edit.js';
import { openCtp } from '../../src/bundle/read.js';
import { fetchCtp } from '../../src/oci/fetch.js';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../../src/verify/ctp/verifiers.js';
import { trustedRootFromJSON } from '../../src/verify/sigstore/trusted-root.js';
import { trustStoreDigest } from '../../src/trust/store.js';
import { runAction, type ActionRun } from './runner.js';
import { FakeRepo } from '../support/github-repo.js';
import { keyIdOf } from '../../src/trust/keyid.js';

const SHA = 'c0ffee'.padEnd(40, '0');
const GITHUB_TOKEN = `ghp_${'x'.repeat(8)}TESTTOKEN${Date.now()}`;
const SAN = 'https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main';

let dir: string;
let sigstore: SigstoreMock;
let oidc: OidcProvider;
let github: GitHubApi;
let registry: TestRegistry;
let logA: LogServer;
let logB: LogServer;
let trustStorePath: string;
let trustedRootPath: string;
/** Outputs of the keyless end-to-end run, which later tests build on. */
let first: Record<string, string> | undefined;

function runnerEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    GITHUB_REPOSITORY: 'acme/app',
    GITHUB_REPOSITORY_ID: '100200300',
    GITHUB_REPOSITORY_OWNER: 'acme',
    GITHUB_REPOSITORY_OWNER_ID: '4004004',
    GITHUB_SHA: SHA,
    GITHUB_REF: 'refs/heads/main',
    GITHUB_REF_NAME: 'main',
    GITHUB_REF_TYPE: 'branch',
    GITHUB_RUN_ID: '9000000001',
    GITHUB_RUN_NUMBER: '17',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_WORKFLOW: 'Release',
    GITHUB_WORKFLOW_REF: 'acme/app/.github/workflows/release.yml@refs/heads/main',
    GITHUB_WORKFLOW_SHA: SHA,
    GITHUB_EVENT_NAME: 'push',
    GITHUB_ACTOR: 'octocat',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: github.url,
    RUNNER_ENVIRONMENT: 'github-hosted',
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_TEMP: join(dir, 'runner-temp'),
    ...oidc.env,
    ...extra,
  };
}

function keylessInputs(extra: Record<string, string> = {}): Record<string, string> {
  return {
    path: 'examples/hello',
    sigstore: 'custom',
    'fulcio-url': sigstore.fulcioURL,
    'rekor-url': sigstore.rekorURL,
    'trusted-root': trustedRootPath,
    'trust-store': trustStorePath,
    logs: 'log-a\nlog-b',
    'log-quorum': '3',
    ...extra,
  };
}

/** The secrets of a run: none may appear in what the runner shows, the summary or the outputs. */
function assertNoSecrets(run: ActionRun, secrets: string[]): void {
  expect(secrets.length).toBeGreaterThan(0);
  const outputs = JSON.stringify(run.outputs);
  for (const s of secrets) {
    expect(run.visible.includes(s)).toBe(false);
    expect(run.stderr.includes(s)).toBe(false);
    expect(run.summary.includes(s)).toBe(false);
    expect(outputs.includes(s)).toBe(false);
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-action-build-'));
  sigstore = await startSigstoreMock();
  oidc = await startOidcProvider(sigstore.oidc, { repository: 'acme/app' });
  github = await startGitHubApi();
  registry = await startRegistry();
  logA = await startLogServer({ db: join(dir, 'a.db'), logId: 'log-a', operator: 'operator-a' });
  logB = await startLogServer({ db: join(dir, 'b.db'), logId: 'log-b', operator: 'operator-b' });
  let store = newTrustStore('ct-action-test');
  store = addLog(store, 'log-a', { operator: 'operator-a', publicKey: createPublicKey({ key: Buffer.from(logA.publicKey, 'base64'), format: 'der', type: 'spki' }), url: logA.url });
  store = addLog(store, 'log-b', { operator: 'operator-b', publicKey: createPublicKey({ key: Buffer.from(logB.publicKey, 'base64'), format: 'der', type: 'spki' }), url: logB.url });
  trustStorePath = join(dir, 'trust-store.json');
  await writeFile(trustStorePath, JSON.stringify(store, null, 2));
  trustedRootPath = join(dir, 'trusted-root.json');
  await writeFile(trustedRootPath, JSON.stringify(sigstore.trustedRoot));
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([sigstore?.close(), oidc?.close(), github?.close(), registry?.stop(), logA?.close(), logB?.close()]);
  await rm(dir, { recursive: true, force: true });
});

describe('build action (dist/index.js)', () => {
  it('packs, signs keylessly, logs in two VCS logs, pushes, sets outputs, writes the summary and posts the commit status', async () => {
    const reference = `${registry.host}/acme/hello:1.0.0`;
    const run = await runAction({
      actionYml: 'action.yml',
      githubToken: GITHUB_TOKEN,
      env: runnerEnv(),
      inputs: keylessInputs({ push: reference, 'registry-plain-http': 'true', 'registry-allowed-addresses': '127.0.0.1' }),
    });
    expect({ code: run.code, errors: run.annotations.filter((a) => a.level === 'error') }).toEqual({ code: 0, errors: [] });

    // Outputs (GITHUB_OUTPUT).
    const o = run.outputs;
    first = o;
    expect(o['image-digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(o['bundle-digest']).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(o.identity).toBe(SAN);
    expect(o.verification).toBe('ALLOW');
    expect(o['registry-reference']).toContain(`@${o['image-digest']}`);
    const atts = JSON.parse(o.attestations) as { path: string; predicateType: string; digest: string }[];
    expect(atts.map((a) => a.predicateType).sort()).toEqual(['https://slsa.dev/provenance/v1', 'https://spdx.dev/Document']);
    const entries = JSON.parse(o['log-entries']) as { attestation: string; log: string; logIndex: number }[];
    for (const a of atts) expect(entries.filter((e) => e.attestation === a.digest).map((e) => e.log).sort()).toEqual(['log-a', 'log-b', 'rekor']);

    // The .ctp: Sigstore bundles and the VCS log entries, its digest as reported.
    const ctp = await openCtp(o['bundle-path']);
    expect(ctp.bundleDigest).toBe(o['bundle-digest']);
    expect([...ctp.entries.keys()].filter((n) => n.startsWith('attestations/')).sort()).toEqual([
      'attestations/provenance.sigstore.json', 'attestations/sbom.sigstore.json', 'attestations/vcs-log-entries.json',
    ]);
    const receipts = JSON.parse(ctp.file('attestations/vcs-log-entries.json').toString('utf8')) as { attestations: { logEntries: { logId: string }[] }[] };
    expect(receipts.attestations.map((a) => a.logEntries.map((e) => e.logId).sort())).toEqual([['log-a', 'log-b'], ['log-a', 'log-b']]);
    expect(logA.api.sth().treeSize).toBe(2);

    // An independent verification of what was pushed: fetch by digest, byte-identical, verifies.
    const fetched = join(dir, 'fetched.ctp');
    await fetchCtp(o['registry-reference'], fetched, { plainHttp: true, allowedAddresses: ['127.0.0.1'] });
    expect((await readFile(fetched)).equals(await readFile(o['bundle-path']))).toBe(true);
    const root = trustedRootFromJSON(sigstore.trustedRoot, 'test');
    const store = JSON.parse(await readFile(trustStorePath, 'utf8'));
    const report = await verifyCtp(fetched, {
      trust: { store, storeDigest: trustStoreDigest(store), trustedRoot: root, trustedRootDigest: root.digest },
      verifiers: defaultVerifiers({ policy: { issuer: 'https://token.actions.githubusercontent.com', subject: SAN }, trustedRoot: root }),
      requirements: { logQuorum: 1 },
    });
    expect({ decision: report.decision, code: report.code }).toEqual({ decision: 'ALLOW', code: null });

    // Job summary.
    expect(run.summary).toContain(o['image-digest']);
    expect(run.summary).toContain(SAN);
    expect(run.summary).toMatch(/log-a #\d+/);
    expect(run.summary).toMatch(/\| #\d+ \|/); // the Rekor log index
    expect(run.summary).toContain('ALLOW');
    expect(run.annotations.filter((a) => a.level === 'warning')).toEqual([]);

    // Commit statuses: pending, then success, shaped as GitHub's API takes them.
    expect(github.errors).toEqual([]);
    const statuses = github.requests.filter((r) => r.operationId === 'repos/create-commit-status');
    expect(statuses.map((s) => s.body.state)).toEqual(['pending', 'success']);
    for (const s of statuses) {
      expect(s.params).toEqual({ owner: 'acme', repo: 'app', sha: SHA });
      expect(s.body.context).toBe('cerro-torre/build');
      expect(s.body.description.length).toBeLessThanOrEqual(140);
      expect(s.body.target_url).toBe('https://github.com/acme/app/actions/runs/9000000001');
      expect(s.headers.authorization).toBe(`token ${GITHUB_TOKEN}`);
    }

    // The OIDC token was asked for with audience sigstore, masked, and never shown.
    expect(oidc.requests.map((r) => [r.audience, r.authorized])).toContainEqual(['sigstore', true]);
    expect(run.masked).toEqual(expect.arrayContaining([GITHUB_TOKEN, ...oidc.issued]));
    assertNoSecrets(run, [GITHUB_TOKEN, oidc.requestToken, ...oidc.issued]);
  }, 60_000);
});

describe('build action and verify action on what was pushed', () => {
  it('packs an image pulled by reference: the same image digest as the pushed one', async () => {
    expect(first).toBeDefined();
    const run = await runAction({
      actionYml: 'action.yml',
      githubToken: '',
      env: runnerEnv({ RUNNER_TEMP: join(dir, 'pull-temp') }),
      inputs: keylessInputs({ path: '', image: `${registry.host}/acme/hello:1.0.0`, name: 'hello-pulled', version: '1.0.0', 'registry-plain-http': 'true', 'registry-allowed-addresses': '127.0.0.1' }),
    });
    expect({ code: run.code, errors: run.annotations.filter((a) => a.level === 'error') }).toEqual({ code: 0, errors: [] });
    expect(run.outputs['image-digest']).toBe(first!['image-digest']);
    expect(run.outputs.verification).toBe('ALLOW');
  }, 60_000);

  it('the verify action fetches the pushed reference and allows it for a policy naming the keyless identity', async () => {
    const policyFile = join(dir, 'keyless.policy.yaml');
    await writeFile(policyFile, [
      'apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: release', 'mode: strict', 'match:', '  environments: [production]',
      'signers:', '  - name: release-workflow', '    issuer: https://token.actions.githubusercontent.com', `    subject: ${SAN}`,
      'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document', 'logQuorum: 1', '',
    ].join('\n'));
    const inputs = {
      reference: first!['registry-reference'], policy: policyFile, environment: 'production', 'trusted-root': trustedRootPath, 'trust-store': trustStorePath,
      'certificate-identity': SAN, 'certificate-oidc-issuer': 'https://token.actions.githubusercontent.com',
      'registry-plain-http': 'true', 'registry-allowed-addresses': '127.0.0.1',
    };
    const ok = await runAction({ actionYml: 'actions/verify/action.yml', githubToken: '', env: runnerEnv({ RUNNER_TEMP: join(dir, 'verify-temp') }), inputs });
    expect({ code: ok.code, errors: ok.annotations.filter((a) => a.level === 'error') }).toEqual({ code: 0, errors: [] });
    expect(ok.outputs).toMatchObject({ decision: 'allow', 'image-digest': first!['image-digest'] });
    // Another identity: the Sigstore attestations no longer count, so the policy denies.
    const other = await runAction({ actionYml: 'actions/verify/action.yml', githubToken: '', env: runnerEnv({ RUNNER_TEMP: join(dir, 'verify-temp') }), inputs: { ...inputs, 'certificate-identity': 'https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main' } });
    expect(other.code).toBe(1);
    expect(other.outputs.decision).toBe('deny');
    expect(other.annotations.filter((a) => a.level === 'error')).toHaveLength(1);
  }, 60_000);
});

describe('build action: signing with a key', () => {
  it('signs with an Ed25519 key from a secret into a VCS bundle logged in both logs, verified with log quorum 2', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    let store = JSON.parse(await readFile(trustStorePath, 'utf8'));
    store = addKey(store, 'builders', publicKey);
    const storePath = join(dir, 'trust-store-key.json');
    await writeFile(storePath, JSON.stringify(store));
    const run = await runAction({
      actionYml: 'action.yml',
      githubToken: GITHUB_TOKEN,
      env: runnerEnv({ RUNNER_TEMP: join(dir, 'key-temp') }),
      inputs: { path: 'examples/hello', signing: 'key', key: pem, 'trust-store': storePath, 'status-context': 'cerro-torre/build-key' },
    });
    expect({ code: run.code, errors: run.annotations.filter((a) => a.level === 'error') }).toEqual({ code: 0, errors: [] });
    expect(run.outputs.verification).toBe('ALLOW');
    expect(run.outputs.identity).toMatch(/^sha256:[0-9a-f]{64}$/);
    const ctp = await openCtp(run.outputs['bundle-path']);
    const bundle = JSON.parse(ctp.file('attestations/bundle.json').toString('utf8')) as { attestations: unknown[]; logEntries: { logId: string }[] };
    expect(bundle.attestations).toHaveLength(2);
    expect(bundle.logEntries.map((e) => e.logId).sort()).toEqual(['log-a', 'log-a', 'log-b', 'log-b']);
    const entries = JSON.parse(run.outputs['log-entries']) as { log: string; logIndex?: number }[];
    expect(entries.map((e) => e.log).sort()).toEqual(['log-a', 'log-a', 'log-b', 'log-b']);
    expect(entries.every((e) => Number.isInteger(e.logIndex))).toBe(true);
    const last = github.requests.filter((r) => r.operationId === 'repos/create-commit-status' && r.body.context === 'cerro-torre/build-key').map((r) => r.body.state);
    expect(last).toEqual(['pending', 'success']);
    const keyLines = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
    assertNoSecrets(run, [GITHUB_TOKEN, ...keyLines]);
  }, 60_000);
  it('stops before pushing when the policy pre-check denies: exit 1, POLICY_VIOLATION, nothing pushed', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    let store = JSON.parse(await readFile(trustStorePath, 'utf8'));
    store = addKey(store, 'builders', publicKey);
    const storePath = join(dir, 'trust-store-policy.json');
    await writeFile(storePath, JSON.stringify(store));
    const policyFile = join(dir, 'other-signer.policy.yaml');
    await writeFile(policyFile, ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: ci', 'mode: strict', 'match:', '  environments: [ci]', 'signers:', '  - name: someone-else', `    keyId: sha256:${'0'.repeat(64)}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', 'logQuorum: 1', ''].join('\n'));
    const reference = `${registry.host}/acme/denied:1.0.0`;
    const run = await runAction({
      actionYml: 'action.yml',
      githubToken: '',
      env: runnerEnv({ RUNNER_TEMP: join(dir, 'policy-temp') }),
      inputs: { path: 'examples/hello', signing: 'key', key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'trust-store': storePath, policy: policyFile, push: reference, 'registry-plain-http': 'true', 'registry-allowed-addresses': '127.0.0.1' },
    });
    expect(run.code).toBe(1);
    expect(run.annotations.filter((a) => a.level === 'error').map((a) => a.message.split(':')[0])).toEqual(['POLICY_VIOLATION']);
    expect(run.outputs['registry-reference']).toBeUndefined();
    expect(run.summary).toContain('denied');
    const res = await fetch(`${registry.url}/v2/acme/denied/tags/list`);
    expect(res.status).toBe(404); // the repository was never created
  }, 60_000);
});

describe('build action: invalid inputs', () => {
  const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const cases: [string, Record<string, string>][] = [
    ['no source', { path: '' }],
    ['two sources', { 'oci-layout': 'examples/hello' }],
    ['a boolean that is not one', { sbom: 'yes please' }],
    ['an unknown signing mode', { signing: 'magic' }],
    ['a custom instance without its trusted root', { 'trusted-root': '' }],
    ['a quorum larger than the logs', { 'log-quorum': '4' }],
    ['a key while signing keylessly', { key: pem }],
    ['a key that is not PEM', { signing: 'key', key: 'registry-password-not-a-key' }],
    ['a log the trust store does not list', { logs: 'log-a\nlog-zzz', 'log-quorum': '1' }],
    ['a source directory that does not exist', { path: 'examples/does-not-exist' }],
    ['nothing to attest', { sbom: 'false', provenance: 'false' }],
  ];
  // Concurrent: each case is its own process; its statuses are told apart by their context.
  it.concurrent.each(cases.map(([n, b], i) => [n, b, i] as const))('%s: exactly one error annotation, exit code 1, failure status, no secret shown', async (_name, bad, i) => {
    const password = `pw-${Date.now()}-secret`;
    const context = `cerro-torre/bad-${i}`;
    const run = await runAction({
      actionYml: 'action.yml',
      githubToken: GITHUB_TOKEN,
      env: runnerEnv({ RUNNER_TEMP: join(dir, `bad-temp-${i}`) }),
      inputs: { ...keylessInputs({ 'registry-password': password, 'registry-username': 'ci', 'status-context': context }), ...bad },
    });
    expect(run.code).toBe(1);
    const errors = run.annotations.filter((a) => a.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/^[A-Z_]+: /);
    expect(github.errors).toEqual([]);
    // Input errors stop before anything is posted; errors found later leave a failure status.
    const states = github.requests.filter((r) => r.body?.context === context).map((r) => r.body.state);
    expect(states.length === 0 || states[states.length - 1] === 'failure').toBe(true);
    assertNoSecrets(run, [GITHUB_TOKEN, password, ...oidc.issued]);
  }, 30_000);
});

describe('build action: promotion after the push (promote-* inputs)', () => {
  it('opens one promotion pull request on the desired-state repository whose diff changes exactly the pin, with the evidence; a rerun with the same bundle changes nothing', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    let store = JSON.parse(await readFile(trustStorePath, 'utf8'));
    store = addKey(store, 'builders', publicKey);
    const storePath = join(dir, 'trust-store-promote.json');
    await writeFile(storePath, JSON.stringify(store));
    const policy = join(dir, 'staging.policy.yaml');
    await writeFile(policy, ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: staging', 'match:', '  environments: [staging]', 'signers:', `  - keyId: ${keyIdOf(publicKey)}`, ''].join('\n'));
    const old = `${registry.host}/acme/hello@sha256:${'1'.repeat(64)}`;
    const file = 'deploy/desired.yaml';
    const text = `# desired state\nenvironments:\n  staging:\n    apps:\n      hello:\n        bundle: ${old}   # pinned by CI\n        hosts: { env: staging }\n`;
    const repo = new FakeRepo('acme', 'deploy', { [file]: text });
    repo.attach(github);
    const inputs = {
      path: 'examples/hello', signing: 'key', key: pem, 'trust-store': storePath, push: `${registry.host}/acme/hello:promote`, 'registry-plain-http': 'true', 'registry-allowed-addresses': '127.0.0.1',
      'promote-environment': 'staging', 'promote-app': 'hello', 'promote-repository': 'acme/deploy', 'promote-file': file, 'promote-policies': policy,
      'promote-api-url': github.url, 'promote-api-allowed-addresses': '127.0.0.1',
    };
    const run = await runAction({ actionYml: 'action.yml', githubToken: GITHUB_TOKEN, env: runnerEnv({ RUNNER_TEMP: join(dir, 'promote-temp') }), inputs });
    expect({ code: run.code, errors: run.annotations.filter((a) => a.level === 'error') }).toEqual({ code: 0, errors: [] });
    expect(github.errors).toEqual([]);
    expect(repo.pulls).toHaveLength(1);
    expect(run.outputs['promotion-url']).toBe(`https://github.example/acme/deploy/pull/1`);
    const pushed = run.outputs['registry-reference'];
    expect(pushed).toMatch(/@sha256:[0-9a-f]{64}$/);
    const after = repo.file('ct-promote/staging/hello', file)!;
    const changed = text.split('\n').map((l, i) => [l, after.split('\n')[i]]).filter(([x, y]) => x !== y);
    expect(changed[0]).toEqual([`        bundle: ${old}   # pinned by CI`, `        bundle: ${pushed}   # pinned by CI`]);
    expect(repo.pulls[0].body).toContain(`key \`${keyIdOf(publicKey)}\` (trust-store roles: builders)`);
    expect(repo.pulls[0].body).toContain('| policy for `staging` | **ALLOW** |');
    // The promotion ran with the build's token (promote-token defaults to github-token), masked.
    expect(github.requests.filter((r) => r.operationId === 'pulls/create').every((r) => r.headers.authorization === `token ${GITHUB_TOKEN}`)).toBe(true);
    assertNoSecrets(run, [GITHUB_TOKEN]);
    const again = await runAction({ actionYml: 'action.yml', githubToken: GITHUB_TOKEN, env: runnerEnv({ RUNNER_TEMP: join(dir, 'promote-temp-2') }), inputs });
    expect(again.code).toBe(0);
    expect(repo.pulls).toHaveLength(1);
    expect(github.errors).toEqual([]);
  }, 120_000);
});
