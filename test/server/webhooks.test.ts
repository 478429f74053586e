import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac, randomUUID } from 'node:crypto';
import { testServer } from './support.js';
import type { WebhookTrigger } from '../../server/routes/webhooks.js';

const OLD = 'old-secret';
const NEW = 'new-secret';
const sign = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('webhooks', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  const triggers: WebhookTrigger[] = [];
  beforeAll(async () => {
    server = await testServer({
      github: { apiUrl: 'http://127.0.0.1:1', webhookSecrets: [NEW, OLD] },
      gitlab: { apiUrl: 'http://127.0.0.1:1', webhookTokens: ['gl-token'] },
      maxBodyBytes: 64 * 1024,
    });
    server.ctx.onTrigger = async (t) => void triggers.push(t);
  });
  afterAll(() => server.close());

  const push = JSON.stringify({ ref: 'refs/heads/main', after: 'b'.repeat(40), repository: { full_name: 'acme/desired' } });
  const gh = (body: string, headers: Record<string, string>) =>
    fetch(`${server.url}/webhooks/github`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

  it('accepts a push signed with either the new or the old secret (rotation)', async () => {
    for (const secret of [NEW, OLD]) {
      const res = await gh(push, { 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(secret, push) });
      expect(res.status).toBe(202);
    }
    expect(triggers.slice(-2).map((t) => [t.event, t.repository, t.sha])).toEqual([
      ['push', 'acme/desired', 'b'.repeat(40)],
      ['push', 'acme/desired', 'b'.repeat(40)],
    ]);
  });

  it('rejects forged and unsigned deliveries with 401 and triggers nothing', async () => {
    const before = triggers.length;
    const id = randomUUID();
    expect((await gh(push, { 'x-github-event': 'push', 'x-github-delivery': id, 'x-hub-signature-256': sign('wrong', push) })).status).toBe(401);
    expect((await gh(push, { 'x-github-event': 'push', 'x-github-delivery': id })).status).toBe(401);
    const tampered = push.replace('acme/desired', 'evil/desired');
    const res = await gh(tampered, { 'x-github-event': 'push', 'x-github-delivery': id, 'x-hub-signature-256': sign(NEW, push) });
    expect(res.status).toBe(401);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BAD_SIGNATURE');
    expect(triggers.length).toBe(before);
  });

  it('answers a replayed delivery id without triggering again', async () => {
    const id = randomUUID();
    const headers = { 'x-github-event': 'push', 'x-github-delivery': id, 'x-hub-signature-256': sign(NEW, push) };
    expect((await gh(push, headers)).status).toBe(202);
    const before = triggers.length;
    const again = await gh(push, headers);
    expect(again.status).toBe(200);
    expect(((await again.json()) as { status: string }).status).toBe('duplicate');
    expect(triggers.length).toBe(before);
  });

  it('ignores unknown events with 202', async () => {
    const body = JSON.stringify({ zen: 'hi' });
    const before = triggers.length;
    const res = await gh(body, { 'x-github-event': 'ping', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(NEW, body) });
    expect(res.status).toBe(202);
    expect(((await res.json()) as { status: string }).status).toBe('ignored');
    expect(triggers.length).toBe(before);
  });

  it('answers 413 to oversized and 400 to malformed deliveries', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(100 * 1024) });
    expect((await gh(big, { 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(NEW, big) })).status).toBe(413);
    const bad = '{"repository":';
    const r1 = await gh(bad, { 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(NEW, bad) });
    expect(r1.status).toBe(400);
    const noRepo = JSON.stringify({ ref: 'refs/heads/main' });
    const r2 = await gh(noRepo, { 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign(NEW, noRepo) });
    expect(r2.status).toBe(400);
    const r3 = await gh(push, { 'x-github-event': 'push', 'x-github-delivery': '../../etc', 'x-hub-signature-256': sign(NEW, push) });
    expect(r3.status).toBe(400);
  });

  it('a correctly signed body that is not UTF-8 is judged on its bytes (400 JSON_INVALID, not a forgery); a GitLab event named constructor is ignored, not a 500 (found by webhook-fuzz)', async () => {
    const raw = Buffer.from([0x7b, 0x80, 0x7d]);
    const r1 = await fetch(`${server.url}/webhooks/github`, { method: 'POST', body: raw, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', NEW).update(raw).digest('hex')}` } });
    expect({ status: r1.status, code: ((await r1.json()) as { error: { code: string } }).error.code }).toEqual({ status: 400, code: 'JSON_INVALID' });
    for (const event of ['constructor', 'hasOwnProperty', '__proto__']) {
      const r2 = await fetch(`${server.url}/webhooks/gitlab`, { method: 'POST', body: push, headers: { 'x-gitlab-token': 'gl-token', 'x-gitlab-event': event, 'x-gitlab-event-uuid': randomUUID(), 'content-type': 'application/json' } });
      expect({ event, status: r2.status }).toEqual({ event, status: 202 });
    }
  });

  it('checks the GitLab token in constant time and handles push events', async () => {
    const body = JSON.stringify({ ref: 'refs/heads/main', checkout_sha: 'c'.repeat(40), project: { path_with_namespace: 'grp/desired' } });
    const post = (token: string, uuid = randomUUID()) =>
      fetch(`${server.url}/webhooks/gitlab`, { method: 'POST', body, headers: { 'x-gitlab-token': token, 'x-gitlab-event': 'Push Hook', 'x-gitlab-event-uuid': uuid, 'content-type': 'application/json' } });
    expect((await post('nope')).status).toBe(401);
    expect((await post('gl-token-longer')).status).toBe(401);
    const uuid = randomUUID();
    expect((await post('gl-token', uuid)).status).toBe(202);
    expect(triggers.at(-1)).toMatchObject({ source: 'gitlab', repository: 'grp/desired', sha: 'c'.repeat(40) });
    expect((await post('gl-token', uuid)).status).toBe(200);
  });

  it('serves health, readiness and Prometheus metrics', async () => {
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/ct_webhooks_total\{source="github",outcome="forged"\} [1-9]/);
    expect(metrics).toMatch(/ct_webhooks_total\{source="github",outcome="replayed"\} 1/);
  });
});

describe('webhooks on a server with no secret or token configured', () => {
  it('says which setting is missing, for GitHub and for GitLab alike (401, nothing triggered)', async () => {
    const server = await testServer({});
    const triggered: WebhookTrigger[] = [];
    server.ctx.onTrigger = async (t) => void triggered.push(t);
    try {
      const body = JSON.stringify({ ref: 'refs/heads/main', repository: { full_name: 'acme/desired' } });
      const github = await fetch(`${server.url}/webhooks/github`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': sign('any', body) } });
      const gitlab = await fetch(`${server.url}/webhooks/gitlab`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': 'any' } });
      const errorOf = async (r: Response) => [r.status, ((await r.json()) as { error: { code: string; message: string } }).error];
      expect(await errorOf(github)).toEqual([401, expect.objectContaining({ code: 'UNAUTHENTICATED', message: 'no GitHub webhook secret configured (github.webhookSecrets, or GITHUB_WEBHOOK_SECRETS)' })]);
      expect(await errorOf(gitlab)).toEqual([401, expect.objectContaining({ code: 'UNAUTHENTICATED', message: 'no GitLab webhook token configured (gitlab.webhookTokens, or GITLAB_WEBHOOK_TOKENS)' })]);
      expect(triggered).toEqual([]);
    } finally {
      await server.close();
    }
  });
});
