/**
 * Issue 6 acceptance, the whole loop on one machine: a commit to a local desired-state repository
 * → signed webhook → the server fetches the bundle from a real local registry → verifies it →
 * policy allows → dispatches it over the signed channel to a host agent → the host verifies again
 * and runs it under runc → host status → commit status and deployment status recorded by the
 * local GitHub API stand-in. A second commit naming a tampered bundle ends in a failure status
 * that names the code, and nothing of it reaches runc.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { signCtp } from '../../src/attest/sign-ctp.js';
import { pushCtp } from '../../src/oci/push.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { keyIdOf, spkiBase64 } from '../../src/trust/keyid.js';
import { PolicyStore } from '../../src/policy/store.js';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { startAgent, type Agent } from '../../host/agent/agent.js';
import { LocalRunner } from '../../host/agent/runner.js';
import { RuncRuntime } from '../../host/runtime/runc.js';
import { collectFacts } from '../../host/facts.js';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';

const SECRET = 'webhook-secret';
const git = (cwd: string, args: string[]) =>
  execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 'ci', GIT_AUTHOR_EMAIL: 'ci@e', GIT_COMMITTER_NAME: 'ci', GIT_COMMITTER_EMAIL: 'ci@e' } }).trim();

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('deploy loop: commit → webhook → registry → verify → host → statuses', () => {
  let dir: string;
  let logs: LogServer[] = [];
  let registry: TestRegistry;
  let github: GitHubApi;
  let server: RunningServer;
  let agent: Agent;
  let runtime: RuncRuntime;
  let work: string;
  let goodRef: string;
  let badRef: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ct-loop-'));
    const p = (n: string) => join(dir, n);
    // An app: a static busybox that sleeps, packed as a one-layer image.
    mkdirSync(p('app/bin'), { recursive: true });
    copyFileSync('/bin/busybox', p('app/bin/busybox'));
    writeFileSync(p('app/ct.toml'), 'name = "hello"\nversion = "1.0.0"\n\n[runtime]\nuser = "65534:65534"\nread_only_rootfs = true\ncapabilities = []\nnetwork = "none"\ncommand = ["/bin/busybox", "sleep", "600"]\n');
    await packCtp({ from: { dir: p('app') }, out: p('hello.ctp'), mtime: 0 });

    const key = generateKeyPairSync('ed25519');
    const keyId = keyIdOf(key.publicKey);
    logs = [
      await startLogServer({ db: p('log1.db'), logId: 'log-one', operator: 'Operator One' }),
      await startLogServer({ db: p('log2.db'), logId: 'log-two', operator: 'Operator Two' }),
    ];
    const trustStore = {
      version: 1, id: 'loop', updated: '2026-01-01T00:00:00Z',
      keys: { builders: [{ id: keyId, algorithm: 'ed25519', publicKey: spkiBase64(key.publicKey), validFrom: '2024-01-01T00:00:00Z' }] },
      thresholds: {},
      logs: Object.fromEntries(logs.map((l) => [l.logId, { operator: l.operator, publicKey: l.publicKey, url: l.url, algorithm: 'ed25519' }])),
    };
    writeFileSync(p('trust.json'), JSON.stringify(trustStore));
    await signCtp(p('hello.ctp'), { key: key.privateKey, logs: logs.map((l) => ({ id: l.logId, url: l.url })), out: p('signed.ctp') });
    // The tampered bundle: a signed bundle whose manifest was edited afterwards (a raised capability).
    const { openCtp } = await import('../../src/bundle/read.js');
    const signed = await openCtp(p('signed.ctp'));
    const manifest = signed.file('manifest.toml').toString('utf8').replace('capabilities = []', 'capabilities = ["CAP_SYS_ADMIN"]');
    await rewriteCtp(p('signed.ctp'), p('tampered.ctp'), { add: { 'manifest.toml': Buffer.from(manifest) } });

    mkdirSync(p('policies'));
    writeFileSync(p('policies/prod.policy.yaml'), [
      'apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: prod', 'mode: strict', 'match:', '  environments: [production]',
      'signers:', `  - keyId: ${keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document',
      'logQuorum: 2', 'runtime:', '  seccomp:', '    profile: runtime-default', '',
    ].join('\n'));

    registry = await startRegistry();
    const good = await pushCtp(p('signed.ctp'), `${registry.host}/acme/hello:1.0.0`, { allowedAddresses: ['127.0.0.1'], plainHttp: true });
    goodRef = `${registry.host}/acme/hello@${good.imageDigest}`;
    const bad = await pushCtp(p('tampered.ctp'), `${registry.host}/acme/evil:1.0.0`, { allowedAddresses: ['127.0.0.1'], plainHttp: true });
    badRef = `${registry.host}/acme/evil@${bad.imageDigest}`;

    // The desired-state repository: a bare repo the server follows, and a working clone.
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', p('desired.git')]);
    work = p('work');
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    git(work, ['remote', 'add', 'origin', p('desired.git')]);
    mkdirSync(join(work, 'deploy'));

    github = await startGitHubApi();
    let nextDeployment = 1000;
    github.respond('repos/create-deployment', (req) => ({ status: 201, body: { id: ++nextDeployment, sha: req.body.ref, ref: req.body.ref, environment: req.body.environment } }));
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', dataDir: p('server'), policies: p('policies'), trustStore: p('trust.json'),
      registries: { allow: [registry.host], allowedAddresses: ['127.0.0.1'], insecure: [registry.host] },
      github: { apiUrl: github.url, token: 'ghs_servertoken', webhookSecrets: [SECRET] },
      desiredState: { repo: p('desired.git'), branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'github', repository: 'acme/desired' } },
    });
    server = await startServer(config, { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx, { hostTimeoutMs: 60_000 }) });

    // A host: enrolled with a one-time token, verifying with its own trust store and policies.
    const admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    const tok = (await (await fetch(`${server.url}/api/v1/hosts/tokens`, { method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ labels: { env: 'production' } }) })).json()) as { token: string };
    const facts = await collectFacts();
    runtime = await RuncRuntime.open({ stateDir: p('host'), unifiedCgroupMount: facts.cgroup.unifiedMount });
    const hostPolicies = new PolicyStore([p('policies')]);
    expect((await hostPolicies.reload()).ok).toBe(true);
    const { parseTrustStore, trustStoreDigest } = await import('../../src/trust/store.js');
    const store = parseTrustStore(JSON.stringify(trustStore));
    agent = await startAgent({
      serverUrl: server.url, stateDir: p('host'), name: 'host-1', enrollToken: tok.token, facts: async () => facts,
      runner: new LocalRunner({ stateDir: p('host'), trust: () => ({ store, storeDigest: trustStoreDigest(store) }), policies: hostPolicies, facts: async () => facts, runtime }),
    });
    await until('host connected', () => agent.connected());
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    for (const c of (await runtime?.list()) ?? []) await runtime.delete(c.id, { force: true, purge: true }).catch(() => undefined);
    runtime?.close();
    await server?.close();
    await github?.close();
    await registry?.stop();
    for (const l of logs) await l.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const commitAndNotify = async (ref: string, message: string) => {
    writeFileSync(join(work, 'deploy', 'state.yaml'), `environments:\n  production:\n    apps:\n      hello:\n        bundle: ${ref}\n        hosts: { env: production }\n`);
    git(work, ['add', '.']);
    git(work, ['commit', '-qm', message]);
    git(work, ['push', '-q', 'origin', 'HEAD:main']);
    const sha = git(work, ['rev-parse', 'HEAD']);
    const body = JSON.stringify({ ref: 'refs/heads/main', after: sha, repository: { full_name: 'acme/desired' } });
    const res = await fetch(`${server.url}/webhooks/github`, {
      method: 'POST', body,
      headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` },
    });
    expect(res.status).toBe(202);
    return sha;
  };

  const finalStatus = (sha: string) =>
    until(`final commit status for ${sha}`, () =>
      github.requests.find((r) => r.operationId === 'repos/create-commit-status' && r.params.sha === sha && r.body.state !== 'pending'),
    );

  it('deploys a signed bundle end to end and reports success to GitHub', async () => {
    const sha = await commitAndNotify(goodRef, 'deploy hello');
    const status = await finalStatus(sha);
    expect(`${status.body.state} ${status.body.description}`).toMatch(/^success /);
    expect(status.body).toMatchObject({ state: "success", context: "cerro-torre/deploy/production" });
    expect(status.body.description.length).toBeLessThanOrEqual(140);
    expect(github.errors).toEqual([]);
    const deployments = github.requests.filter((r) => r.operationId === 'repos/create-deployment' && r.body.ref === sha);
    expect(deployments).toHaveLength(1);
    expect(deployments[0].body).toMatchObject({ environment: 'production', ref: sha });
    const statuses = github.requests.filter((r) => r.operationId === 'repos/create-deployment-status' && r.params.deployment_id === String(1001));
    expect(statuses.map((s) => s.body.state)).toContain('success');
    // The container really runs on the host.
    const containers = await runtime.list();
    expect(containers.find((c) => c.id === 'ct-production-hello')?.status).toBe('running');
  }, 120_000);

  it('ends a commit naming a tampered bundle in a failure status with the code, and never runs it', async () => {
    const before = (await runtime.list()).map((c) => `${c.id}:${c.imageDigest}`);
    const sha = await commitAndNotify(badRef, 'deploy tampered');
    const status = await finalStatus(sha);
    expect(status.body.state).toBe('failure');
    expect(status.body.description).toMatch(/DIGEST_MISMATCH|UNCOVERED_FILE/);
    expect(github.errors).toEqual([]);
    expect((await runtime.list()).map((c) => `${c.id}:${c.imageDigest}`)).toEqual(before);
  }, 120_000);
});
