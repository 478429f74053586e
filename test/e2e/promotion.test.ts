/**
 * Issue 15 acceptance, promotion between environments on one machine: a commit to the
 * desired-state repository (staging pins bundle A, production pins bundle B, `promotion: staging →
 * production after 2s`) → signed webhook → A deploys to a staging host under runc, B is denied in
 * production (NOT_VERIFIED_IN: it never ran in staging) → A stays healthy for 2 s → the server
 * signs a deploy VSA with its deployer key (recorded, published as an OCI referrer, verifiable with
 * ct's verifier, rejected after a byte change) and opens the promotion pull request on the GitHub
 * stand-in (requests checked against GitHub's OpenAPI) with the evidence → the pull request is
 * merged (its file committed to the desired-state repository) → production deploys A on its runc
 * host: the server's and the host's requireVerifiedIn both see the VSA.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig } from '../../server/config.js';
import { startServer, type RunningServer } from '../../server/start.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { createApiKey } from '../../server/auth/api-keys.js';
import { verifyDeployVsa, VSA_ARTIFACT_TYPE } from '../../src/attest/vsa.js';
import { RegistryClient } from '../../src/oci/client.js';
import { parseReference } from '../../src/oci/reference.js';
import { fetchVsas } from '../../src/oci/vsa-referrer.js';
import { keyIdOf } from '../../src/trust/keyid.js';
import { containerIdFor } from '../../src/protocol/container-id.js';
import { FakeRepo } from '../support/github-repo.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { codeOf } from '../support/error-code.js';
import { loopFixture, startTestHost, until, WEBHOOK_SECRET, type LoopFixture, type TestHost } from './fixture.js';

const FILE = 'deploy/state.yaml';
const deployer = generateKeyPairSync('ed25519');

function desired(staging: string, production: string, after = '2s'): string {
  return [
    '# desired state: staging first, production after it stayed healthy',
    'environments:',
    '  staging:',
    '    apps:',
    '      hello:',
    `        bundle: ${staging}`,
    '        hosts: { env: staging }',
    '  production:',
    '    apps:',
    '      hello:',
    `        bundle: ${production}   # promoted from staging`,
    '        hosts: { env: production }',
    'promotion:',
    `  - { from: staging, to: production, after: ${after} }`,
    '',
  ].join('\n');
}

describe('promotion: staging deploy → healthy → VSA → pull request → production allowed', () => {
  let fx: LoopFixture;
  let server: RunningServer;
  let staging: TestHost;
  let production: TestHost;
  let repo: FakeRepo;
  let admin: string;
  let a: string;
  let b: string;

  beforeAll(async () => {
    fx = await loopFixture({ deployers: [deployer.publicKey] });
    // Production requires proof that this very bundle ran in staging; staging judges as production otherwise does.
    const prod = join(fx.policiesDir, 'prod.policy.yaml');
    const { readFileSync } = await import('node:fs');
    const base = readFileSync(prod, 'utf8');
    writeFileSync(prod, `${base}requireVerifiedIn: [staging]\n`);
    writeFileSync(join(fx.policiesDir, 'staging.policy.yaml'), base.replace('name: prod', 'name: staging').replace('environments: [production]', 'environments: [staging]'));
    const keyFile = join(fx.dir, 'deployer.pem');
    writeFileSync(keyFile, deployer.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, { mode: 0o600 });
    a = await fx.refs.good('acme/hello');
    b = await fx.signedApp('acme/other', 'name = "other"\nversion = "1.0.0"\n\n[runtime]\nuser = "65534:65534"\nread_only_rootfs = true\ncapabilities = []\nnetwork = "none"\ncommand = ["/bin/busybox", "sleep", "600"]\n');
    repo = new FakeRepo('acme', 'desired', { [FILE]: desired(a, b) });
    repo.attach(fx.github);
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', dataDir: `${fx.dir}/server`, policies: fx.policiesDir, trustStore: fx.trustStorePath,
      registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
      github: { apiUrl: fx.github.url, token: 'ghs_servertoken', webhookSecrets: [WEBHOOK_SECRET], allowedAddresses: ['127.0.0.1'] },
      deployer: { keyFile },
      desiredState: { repo: fx.desiredRepo, branch: 'main', path: 'deploy', pollSeconds: 3600, report: { provider: 'github', repository: 'acme/desired' } },
    });
    server = await startServer(config, { log: pino({ level: process.env.CT_TEST_LOG ?? 'silent' }), extend: (ctx) => deployPipeline(ctx, { hostTimeoutMs: 60_000 }) });
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    staging = await startTestHost(server.url, admin, fx, 'staging-1', { environment: 'staging' });
    production = await startTestHost(server.url, admin, fx, 'production-1', { environment: 'production' });
  }, 180_000);

  afterAll(async () => {
    await staging?.stop();
    await production?.stop();
    await server?.close();
    await fx?.cleanup();
  });

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${server.url}${path}`, { ...init, headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', ...(init.headers ?? {}) } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const statusOf = (sha: string, env: string) => fx.finalStatuses(sha).find((r) => r.body.context === `cerro-torre/deploy/${env}`)?.body as { state: string; description: string } | undefined;

  it('denies production before any VSA, deploys staging, signs and publishes its VSA after 2 s healthy, and opens the promotion pull request with the evidence', async () => {
    // Before anything ran in staging, production's policy refuses bundle A.
    const before = await api('/api/v1/verify', { method: 'POST', body: JSON.stringify({ reference: a, environment: 'production' }) });
    expect(before.body).toMatchObject({ decision: 'REJECT', code: 'NOT_VERIFIED_IN' });

    const sha = fx.commitText(desired(a, b), 'staging gets A, production keeps B');
    expect(await fx.webhook(server.url, sha)).toBe(202);
    const st = await until('staging status', () => statusOf(sha, 'staging'), 90_000);
    expect(st.state).toBe('success');
    // B never ran in staging: production denies it (server side, before any host is asked).
    const pr = await until('production status', () => statusOf(sha, 'production'), 90_000);
    expect(pr.state).toBe('failure');
    expect(pr.description).toContain('NOT_VERIFIED_IN');
    expect((await production.runtime.list()).some((c) => c.id === containerIdFor('production', 'hello'))).toBe(false);
    expect((await staging.runtime.list()).find((c) => c.id === containerIdFor('staging', 'hello'))?.status).toBe('running');

    // After the wait: one pull request to production, on the stand-in, with the evidence.
    const pull = await until('promotion pull request', () => repo.pulls[0], 60_000).catch(async (e) => {
      console.log(JSON.stringify(await server.ctx.db.query("SELECT kind, state, attempts, last_error, result, run_at FROM jobs WHERE kind = 'promotion'")), JSON.stringify(await server.ctx.db.query("SELECT kind, record FROM audit WHERE kind LIKE 'promotion%' OR kind LIKE 'vsa%'")));
      throw e;
    });
    expect(fx.github.errors).toEqual([]);
    expect(pull).toMatchObject({ head: 'ct-promote/production/hello', base: 'main', state: 'open' });
    const after = repo.file(pull.head, FILE)!;
    const changed = desired(a, b).split('\n').map((l, i) => [l, after.split('\n')[i]]).filter(([x, y]) => x !== y);
    expect(changed[0]).toEqual([`        bundle: ${b}   # promoted from staging`, `        bundle: ${a}   # promoted from staging`]);
    expect(pull.body).toContain('## Promote `hello` to `production`');
    expect(pull.body).toContain('| ran in | `staging` (deploy VSAs signed by a `deployers` key, verified) |');
    expect(pull.body).toContain('| policy for `production` | **ALLOW** |');
    expect(pull.body).toMatch(/- Operator One: `log-one` #\d+/);
    // The pull request opens before its commit status is posted: wait for the status.
    expect(await until('promotion status', () => repo.statuses.find((s) => s.context === 'cerro-torre/promote/production'), 30_000)).toMatchObject({ state: 'success' });
    expect(fx.github.requests.filter((r) => r.operationId === 'pulls/create')).toHaveLength(1);

    // The VSA: recorded and exported, signed by the deployer key, published with the bundle.
    const imageDigest = a.split('@')[1];
    const vsas = (await api(`/api/v1/vsas?imageDigest=${imageDigest}`)).body.vsas as { environment: string; envelope: string; published: string | null }[];
    expect(vsas.map((v) => v.environment)).toEqual(['staging']);
    expect(vsas[0].published).toMatch(/referrer|tag index/);
    const bytes = Buffer.from(vsas[0].envelope);
    const v = verifyDeployVsa(bytes, { store: fx.trust.store, imageDigest, environment: 'staging' });
    expect(v.keyId).toBe(keyIdOf(deployer.publicKey));
    const published = await fetchVsas(a, { allowedAddresses: ['127.0.0.1'], plainHttp: true });
    expect(published.map((p) => p.toString('utf8'))).toContain(vsas[0].envelope);
    // Labelled for replacement by the environment's next VSA of this key (docs/registry.md).
    const rc = await RegistryClient.open(parseReference(a), { allowedAddresses: ['127.0.0.1'], plainHttp: true });
    try {
      expect((await rc.referrers(imageDigest, VSA_ARTIFACT_TYPE)).descriptors.map((d) => d.annotations)).toEqual([{
        'dev.cerro-torre.vsa.environment': 'staging', 'dev.cerro-torre.vsa.verifier': keyIdOf(deployer.publicKey), 'org.opencontainers.image.created': expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      }]);
    } finally {
      await rc.close();
    }
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 3] ^= 1;
    expect(codeOf(() => verifyDeployVsa(flipped, { store: fx.trust.store, imageDigest, environment: 'staging' }))).toMatch(/VSA_INVALID|INVALID_SIGNATURE/);
    expect((await api('/api/v1/deployer')).body).toMatchObject({ keyId: keyIdOf(deployer.publicKey), role: 'deployers' });
    // The promotion was audited.
    const audit = await until('promotion audited', async () => {
      const a = (await api('/api/v1/audit?kind=promotion.opened')).body as { entries: { record: { to: string; trigger: string } }[] };
      return a.entries.length > 0 && a;
    }, 30_000);
    expect(audit.entries.map((r) => r.record)).toEqual([expect.objectContaining({ to: 'production', trigger: 'after' })]);
  }, 240_000);

  it('the MCP tool promote (SDK client over /mcp) asks the server for the same promotion: the operator gets the same pull request, a viewer is refused, an undeclared app is a clear error, every call audited', async () => {
    const connect = async (role: 'operator' | 'viewer') => {
      const c = new Client({ name: 'test-agent', version: '1.0.0' });
      await c.connect(new StreamableHTTPClientTransport(new URL(`${server.url}/mcp`), { requestInit: { headers: { authorization: `Bearer ${(await createApiKey(server.ctx.db, `mcp-${role}`, role)).key}` } } }));
      return c;
    };
    type Result = { isError?: boolean; structuredContent?: Record<string, unknown>; content: { text?: string }[] };
    const operator = await connect('operator');
    const viewer = await connect('viewer');
    try {
      expect((await operator.listTools()).tools.find((t) => t.name === 'promote')?.annotations?.readOnlyHint).toBe(false);
      const done = (await operator.callTool({ name: 'promote', arguments: { app: 'hello', from: 'staging', to: 'production' } })) as Result;
      expect(done.isError).toBeFalsy();
      expect(done.structuredContent).toMatchObject({ outcome: 'unchanged', number: 1, url: expect.stringContaining('/pull/1'), allowed: true, bundle: a, branch: 'ct-promote/production/hello', file: FILE });
      expect(repo.pulls).toHaveLength(1);
      const refused = (await viewer.callTool({ name: 'promote', arguments: { app: 'hello', from: 'staging', to: 'production' } })) as Result;
      expect(refused.isError).toBe(true);
      // Error answers are JSON: the code, and the message as untrusted text.
      expect(JSON.parse(refused.content[0].text ?? '')).toMatchObject({ code: 'FORBIDDEN', message: { untrusted: true, text: 'role viewer may not deploy' } });
      const missing = (await operator.callTool({ name: 'promote', arguments: { app: 'hello', from: 'staging', to: 'qa' } })) as Result;
      expect(missing.isError).toBe(true);
      expect(JSON.parse(missing.content[0].text ?? '')).toMatchObject({ code: 'PROMOTE_APP_MISSING' });
      const bad = (await operator.callTool({ name: 'promote', arguments: { app: 'Hello World', from: 'staging', to: 'production' } })) as Result;
      expect(bad.isError).toBe(true);
      const calls = (await server.ctx.db.query<{ record: string }>(`SELECT record FROM audit WHERE kind = 'mcp.tool' AND subject = 'promote'`)).map((r) => JSON.parse(r.record) as Record<string, unknown>);
      expect(calls).toEqual(expect.arrayContaining([
        expect.objectContaining({ tool: 'promote', ok: true, principal: expect.objectContaining({ role: 'operator' }) }),
        expect.objectContaining({ tool: 'promote', ok: false, code: 'FORBIDDEN', principal: expect.objectContaining({ role: 'viewer' }) }),
      ]));
      const api = (await server.ctx.db.query<{ record: string }>(`SELECT record FROM audit WHERE kind = 'promotion.opened'`)).map((r) => JSON.parse(r.record) as { trigger: string });
      expect(api.map((r) => r.trigger).sort()).toEqual(['after', 'api']);
    } finally {
      await operator.close();
      await viewer.close();
    }
  }, 120_000);

  it('after the merge, production deploys the promoted bundle (server and host judge its VSA); a bundle that never ran in staging stays denied', async () => {
    const merged = repo.merge(repo.pulls[0].number);
    const text = repo.commits.get(merged)!.files.get(FILE)!;
    const sha = fx.commitText(text, 'Merge pull request #1: promote hello to production');
    expect(await fx.webhook(server.url, sha)).toBe(202);
    const pr = await until('production status', () => statusOf(sha, 'production'), 90_000);
    expect(`${pr.state} ${pr.description}`).toMatch(/^success /);
    expect((await production.runtime.list()).find((c) => c.id === containerIdFor('production', 'hello'))).toMatchObject({ status: 'running', imageDigest: a.split('@')[1] });
    // The verify API agrees, and a different digest (B, never in staging) is still denied.
    expect((await api('/api/v1/verify', { method: 'POST', body: JSON.stringify({ reference: b, environment: 'production' }) })).body).toMatchObject({ decision: 'REJECT', code: 'NOT_VERIFIED_IN' });
    expect(fx.github.errors).toEqual([]);
  }, 180_000);
});
