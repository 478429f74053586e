/**
 * The deploy action (`node dist/deploy/index.js`) against a stand-in of the deploy server's API:
 * requests are checked against the server's own request schema (server/openapi.ts) and the bearer
 * token is verified as the server verifies CI tokens (issuer key, audience). The stand-in plays
 * a deployment through queued → verifying → succeeded (or denied).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Ajv2020Module from 'ajv/dist/2020.js';
import { REQUEST_SCHEMAS } from '../../server/openapi.js';
import { TestOidcIssuer } from '../support/sigstore-oidc.js';
import { startOidcProvider, type OidcProvider } from '../support/oidc-provider.js';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { runAction } from './runner.js';

const Ajv2020 = Ajv2020Module as unknown as typeof Ajv2020Module.default;
const validate = new Ajv2020({ strict: false }).compile(REQUEST_SCHEMAS.createDeployment);
const REF = `registry.example.com/acme/hello:1.0.0@sha256:${'e'.repeat(64)}`;
const SHA = 'de'.repeat(20);

let issuer: TestOidcIssuer;
let oidc: OidcProvider;
let github: GitHubApi;
let server: Server;
let url: string;
const seen: { method: string; path: string; body?: unknown; valid: boolean; audienceOk: boolean }[] = [];
let outcome: 'succeeded' | 'denied' = 'succeeded';

beforeAll(async () => {
  issuer = await TestOidcIssuer.create();
  oidc = await startOidcProvider(issuer);
  github = await startGitHubApi();
  const polls = new Map<string, number>();
  server = createServer((req, res) => {
    void (async () => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      const audienceOk = await issuer.verify(token, 'cerro-torre').then(() => true, () => false);
      const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.method === 'POST' && req.url === '/api/v1/deployments') {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
        const valid = validate(body) === true;
        seen.push({ method: 'POST', path: req.url, body, valid, audienceOk });
        if (!audienceOk) return send(401, { error: { code: 'UNAUTHENTICATED', message: 'token rejected' } });
        if (!valid) return send(400, { error: { code: 'BAD_REQUEST', message: 'schema' } });
        return send(202, { id: 'dep-1', created: true });
      }
      const m = /^\/api\/v1\/deployments\/([\w-]+)$/.exec(req.url ?? '');
      if (req.method === 'GET' && m) {
        seen.push({ method: 'GET', path: req.url!, valid: true, audienceOk });
        const n = (polls.get(m[1]) ?? 0) + 1;
        polls.set(m[1], n);
        const status = n < 3 ? (n === 1 ? 'queued' : 'verifying') : outcome;
        return send(200, { id: m[1], status, message: status === 'denied' ? 'NO_POLICY: no policy matches' : status === 'succeeded' ? 'running on 1 host(s)' : null });
      }
      send(404, { error: { code: 'NOT_FOUND', message: 'no route' } });
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server?.closeAllConnections();
  await Promise.allSettled([oidc?.close(), github?.close(), new Promise((r) => server?.close(r))]);
});

const env = () => ({ GITHUB_REPOSITORY: 'acme/app', GITHUB_SHA: SHA, GITHUB_RUN_ID: '5', GITHUB_API_URL: github.url, RUNNER_TEMP: '/tmp', ...oidc.env });

describe('deploy action (dist/deploy/index.js)', () => {
  it('requests the deployment with the job OIDC token (audience cerro-torre) and follows it to succeeded', async () => {
    seen.length = 0;
    outcome = 'succeeded';
    const run = await runAction({ actionYml: 'actions/deploy/action.yml', githubToken: 'ghs_deploytoken123', env: env(), inputs: { server: url, environment: 'staging', app: 'hello', bundle: REF, hosts: 'zone=eu', commit: SHA, 'poll-interval-ms': '50' } });
    expect({ code: run.code, errors: run.annotations.filter((a) => a.level === 'error') }).toEqual({ code: 0, errors: [] });
    expect(run.outputs).toMatchObject({ 'deployment-id': 'dep-1', status: 'succeeded' });
    expect(seen[0]).toMatchObject({ method: 'POST', valid: true, audienceOk: true, body: { environment: 'staging', app: 'hello', bundle: REF, hosts: { zone: 'eu' }, commit: SHA } });
    expect(seen.filter((s) => s.method === 'GET').length).toBe(3);
    expect(oidc.requests.map((r) => r.audience)).toContain('cerro-torre');
    const status = github.requests.filter((r) => r.operationId === 'repos/create-commit-status').pop()!;
    expect(status.body).toMatchObject({ state: 'success', context: 'cerro-torre/deploy' });
    expect(github.errors).toEqual([]);
    for (const t of [...oidc.issued, 'ghs_deploytoken123']) expect(run.visible.includes(t) || run.summary.includes(t) || run.stderr.includes(t)).toBe(false);
  }, 30_000);

  it('a commit status GitHub refuses is a warning, not a failure of the step', async () => {
    outcome = 'succeeded';
    const refusing = await startGitHubApi();
    refusing.respond('repos/create-commit-status', () => ({ status: 403, body: { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest' } }));
    try {
      const run = await runAction({ actionYml: 'actions/deploy/action.yml', githubToken: 'ghs_refused123', env: { ...env(), GITHUB_API_URL: refusing.url }, inputs: { server: url, environment: 'staging', app: 'hello', bundle: REF, 'poll-interval-ms': '50' } });
      expect(run.code).toBe(0);
      expect(run.annotations.filter((a) => a.level === 'error')).toEqual([]);
      expect(run.annotations.filter((a) => a.level === 'warning').map((a) => a.message)).toEqual([expect.stringMatching(/cerro-torre\/deploy not posted: HTTP 403/)]);
      expect(refusing.requests).toHaveLength(1);
    } finally {
      await refusing.close();
    }
  }, 30_000);

  it('fails with one annotation when the server denies the deployment', async () => {
    outcome = 'denied';
    const run = await runAction({ actionYml: 'actions/deploy/action.yml', githubToken: '', env: env(), inputs: { server: url, environment: 'staging', app: 'hello', bundle: REF, 'poll-interval-ms': '50' } });
    expect(run.code).toBe(1);
    const errors = run.annotations.filter((a) => a.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0].message).toMatch(/^POLICY_VIOLATION: /);
    expect(run.outputs.status).toBe('denied');
  }, 30_000);

  it('refuses a bundle not pinned by digest before calling the server', async () => {
    const before = seen.length;
    const run = await runAction({ actionYml: 'actions/deploy/action.yml', githubToken: '', env: env(), inputs: { server: url, environment: 'staging', app: 'hello', bundle: 'registry.example.com/acme/hello:latest' } });
    expect(run.code).toBe(1);
    expect(run.annotations.filter((a) => a.level === 'error').map((a) => a.message.split(':')[0])).toEqual(['USAGE']);
    expect(seen.length).toBe(before);
  }, 30_000);
});
