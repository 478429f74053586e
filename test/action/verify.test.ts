/**
 * The verify action as a pull-request gate (`node dist/verify/index.js`): a .ctp signed with a
 * trusted key and logged in two VCS logs is allowed by a policy naming that key, and denied by
 * the same policy naming another key (exit 1, one error annotation, a failure status).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { generateKeyPairSync, createPublicKey } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { startLogServer, type LogServer } from '../../src/tlog/index.js';
import { addKey, addLog, newTrustStore } from '../../src/trust/edit.js';
import { keyIdOf } from '../../src/trust/keyid.js';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { signCtp } from '../../src/attest/sign-ctp.js';
import { runAction } from './runner.js';

const SHA = 'ab12'.padEnd(40, '0');
const TOKEN = `ghs_verify${Date.now()}token`;
let dir: string;
let github: GitHubApi;
let logs: LogServer[];
let bundle: string;
let storePath: string;
let keyId: string;

const policy = (signer: string) => `apiVersion: cerro-torre.dev/v2
kind: Policy
name: pr-gate
mode: strict
match:
  environments: [staging]
signers:
  - name: ci-key
    keyId: ${signer}
attestations:
  - predicateType: https://slsa.dev/provenance/v1
  - predicateType: https://spdx.dev/Document
logQuorum: 2
`;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ct-action-verify-'));
  github = await startGitHubApi();
  logs = [await startLogServer({ db: join(dir, 'a.db'), logId: 'log-a', operator: 'op-a' }), await startLogServer({ db: join(dir, 'b.db'), logId: 'log-b', operator: 'op-b' })];
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  keyId = keyIdOf(publicKey);
  let store = addKey(newTrustStore('verify-test'), 'builders', publicKey);
  for (const l of logs) store = addLog(store, l.logId, { operator: l.operator, url: l.url, publicKey: createPublicKey({ key: Buffer.from(l.publicKey, 'base64'), format: 'der', type: 'spki' }) });
  storePath = join(dir, 'store.json');
  await writeFile(storePath, JSON.stringify(store));
  bundle = join(dir, 'hello.ctp');
  await packCtp({ from: { dir: 'examples/hello' }, out: bundle });
  await signCtp(bundle, { key: privateKey, logs: logs.map((l) => ({ id: l.logId, url: l.url, publicKey: l.publicKey, operator: l.operator })) });
  await writeFile(join(dir, 'allow.policy.yaml'), policy(keyId));
  await writeFile(join(dir, 'deny.policy.yaml'), policy(`sha256:${'0'.repeat(64)}`));
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([github?.close(), ...(logs ?? []).map((l) => l.close())]);
  await rm(dir, { recursive: true, force: true });
});

const env = () => ({ GITHUB_REPOSITORY: 'acme/app', GITHUB_SHA: SHA, GITHUB_RUN_ID: '77', GITHUB_SERVER_URL: 'https://github.com', GITHUB_API_URL: github.url, RUNNER_TEMP: join(dir, 'tmp') });

describe('verify action (dist/verify/index.js)', () => {
  it('allows a bundle the policy accepts: outputs, summary, success status', async () => {
    const run = await runAction({ actionYml: 'actions/verify/action.yml', githubToken: TOKEN, env: env(), inputs: { bundle, policy: join(dir, 'allow.policy.yaml'), environment: 'staging', 'trust-store': storePath } });
    expect({ code: run.code, errors: run.annotations.filter((a) => a.level === 'error') }).toEqual({ code: 0, errors: [] });
    expect(run.outputs.decision).toBe('allow');
    expect(JSON.parse(run.outputs.policies)).toEqual(['pr-gate']);
    expect(run.summary).toContain(keyId);
    expect(github.errors).toEqual([]);
    const s = github.requests.filter((r) => r.operationId === 'repos/create-commit-status').pop()!;
    expect(s.body).toMatchObject({ state: 'success', context: 'cerro-torre/verify', target_url: 'https://github.com/acme/app/actions/runs/77' });
    expect(s.params.sha).toBe(SHA);
    expect(run.visible.includes(TOKEN) || run.summary.includes(TOKEN)).toBe(false);
  }, 30_000);

  it('denies a bundle signed by a key the policy does not name: exit 1, one annotation, failure status', async () => {
    const run = await runAction({ actionYml: 'actions/verify/action.yml', githubToken: TOKEN, env: env(), inputs: { bundle, policy: join(dir, 'deny.policy.yaml'), environment: 'staging', 'trust-store': storePath } });
    expect(run.code).toBe(1);
    expect(run.annotations.filter((a) => a.level === 'error')).toHaveLength(1);
    expect(run.outputs.decision).toBe('deny');
    expect(run.outputs.code).toMatch(/^[A-Z_]+$/);
    expect(JSON.parse(run.outputs.violations).length).toBeGreaterThan(0);
    const s = github.requests.filter((r) => r.operationId === 'repos/create-commit-status').pop()!;
    expect(s.body.state).toBe('failure');
    expect(s.body.description.length).toBeLessThanOrEqual(140);
    expect(github.errors).toEqual([]);
  }, 30_000);

  it('denies for an environment no policy matches (NO_POLICY), and reports but passes with fail-on-deny false', async () => {
    const run = await runAction({ actionYml: 'actions/verify/action.yml', githubToken: '', env: env(), inputs: { bundle, policy: join(dir, 'allow.policy.yaml'), environment: 'production', 'trust-store': storePath, 'fail-on-deny': 'false' } });
    expect(run.code).toBe(0);
    expect(run.outputs).toMatchObject({ decision: 'deny', code: 'NO_POLICY' });
  }, 30_000);

  it('rejects a tampered bundle before any policy: integrity failure', async () => {
    const { rewriteCtp } = await import('../../src/bundle/write.js');
    const bad = join(dir, 'tampered.ctp');
    await rewriteCtp(bundle, bad, { add: { 'manifest.toml': Buffer.from('name = "hello"\nversion = "6.6.6"\nimage_digest = "sha256:' + '1'.repeat(64) + '"\n[metadata]\nbuild_timestamp = "1970-01-01T00:00:00Z"\nbuilder = "x"\n') } });
    const run = await runAction({ actionYml: 'actions/verify/action.yml', githubToken: '', env: env(), inputs: { bundle: bad, policy: join(dir, 'allow.policy.yaml'), environment: 'staging', 'trust-store': storePath } });
    expect(run.code).toBe(1);
    expect(run.annotations.filter((a) => a.level === 'error')).toHaveLength(1);
  }, 30_000);
});
