/**
 * Seeded fuzzing of webhook bodies (#13 acceptance: "webhook bodies"), fixed budget, through the
 * real server: correctly signed (GitHub) or tokened (GitLab) deliveries whose bodies, events and
 * delivery ids are hostile — nesting up to and past the depth limit, prototype keys, values of the
 * wrong type where the route reads fields, form-encoded payloads, bytes that are not UTF-8, event
 * names such as `constructor`. Every answer is 200/202/400/413 with a small JSON error or status
 * (a correctly signed body that is not UTF-8 included: the HMAC is over the bytes as they arrived),
 * never a 5xx; every trigger handed on has string fields and a known event; the server still takes
 * a plain push afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { testServer } from './support.js';
import { GITHUB_EVENTS, type WebhookTrigger } from '../../server/routes/webhooks.js';

const SECRET = 'fuzz-secret';
const TOKEN = 'fuzz-token';
const SEED = 0x13_0009;
const RUNS = 120;
const sign = (body: Buffer) => `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
const KNOWN_EVENTS = new Set([...GITHUB_EVENTS, 'pipeline']);

let server: Awaited<ReturnType<typeof testServer>>;
const triggers: WebhookTrigger[] = [];
beforeAll(async () => {
  server = await testServer({
    github: { apiUrl: 'http://127.0.0.1:1', webhookSecrets: [SECRET] },
    gitlab: { apiUrl: 'http://127.0.0.1:1', webhookTokens: [TOKEN] },
    maxBodyBytes: 256 * 1024,
  });
  server.ctx.onTrigger = async (t) => void triggers.push(t);
});
afterAll(() => server.close());

const PROTO = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty'];
const leaf = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.string({ maxLength: 30 }), fc.constant('x'.repeat(5000)), fc.constant([]), fc.constant({}));
const deep = (d: number, inner = '0') => `${'['.repeat(d)}${inner}${']'.repeat(d)}`;

/** A push-like body with one hostile change, as raw bytes. */
const body = fc.oneof(
  // a field the route reads, retyped
  fc.record({ path: fc.constantFrom('repository', 'repository.full_name', 'ref', 'after', 'workflow_run', 'workflow_run.head_sha', 'deployment.sha', 'project', 'project.path_with_namespace', 'object_attributes', 'checkout_sha'), v: leaf }).map(({ path, v }) => {
    const o: Record<string, any> = { ref: 'refs/heads/main', after: 'b'.repeat(40), repository: { full_name: 'acme/desired' }, project: { path_with_namespace: 'grp/desired' } }; // eslint-disable-line @typescript-eslint/no-explicit-any
    const parts = path.split('.');
    let t = o;
    for (const p of parts.slice(0, -1)) t = (t[p] ??= {});
    t[parts.at(-1)!] = v;
    return Buffer.from(JSON.stringify(o));
  }),
  // nesting around the limit, at the top or under a field the route reads
  fc.record({ d: fc.integer({ min: 1, max: 300 }), at: fc.constantFrom('top', 'repository', 'pad') }).map(({ d, at }) =>
    Buffer.from(at === 'top' ? deep(d, '{}') : at === 'repository' ? `{"ref":"refs/heads/main","repository":${deep(d, '{"full_name":"a/b"}')}}` : `{"repository":{"full_name":"a/b"},"pad":${deep(d)}}`)),
  // prototype keys as an attacker writes them (own keys of the text)
  fc.record({ key: fc.constantFrom(...PROTO), where: fc.constantFrom('top', 'repository', 'project') }).map(({ key, where }) => {
    const inner = `${JSON.stringify(key)}:{"full_name":"evil/x","path_with_namespace":"evil/x","polluted":true}`;
    const text = where === 'top' ? `{${inner},"repository":{"full_name":"a/b"}}` : `{"repository":{${where === 'repository' ? inner + ',' : ''}"full_name":"a/b"},"project":{${where === 'project' ? inner + ',' : ''}"path_with_namespace":"g/p"}}`;
    return Buffer.from(text);
  }),
  // not a JSON object at all
  fc.oneof(fc.constant('[]'), fc.constant('null'), fc.constant('"s"'), fc.constant(''), fc.constant('{"a":'), fc.string({ maxLength: 50 })).map((s) => Buffer.from(s)),
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  // big but under the limit
  fc.integer({ min: 1, max: 20_000 }).map((n) => Buffer.from(JSON.stringify({ repository: { full_name: 'a/b' }, list: Array.from({ length: n }, (_, i) => i) }))),
);
const githubEvent = fc.oneof(fc.constantFrom(...GITHUB_EVENTS, 'ping', ...PROTO), fc.string({ maxLength: 20 }).filter((s) => /^[\x21-\x7e]*$/.test(s)));
const gitlabEvent = fc.oneof(fc.constantFrom('Push Hook', 'Pipeline Hook', 'Tag Push Hook', 'Note Hook', ...PROTO), fc.string({ maxLength: 20 }).filter((s) => /^[\x20-\x7e]*$/.test(s.trim()) && s.trim() === s));
let n = 0;
const delivery = () => `fuzz-${process.pid}-${n++}`;

async function check(res: Response, what: string): Promise<void> {
  const text = await res.text();
  expect({ what, status: [200, 202, 400, 413].includes(res.status) ? 'ok' : res.status }).toEqual({ what, status: 'ok' });
  expect({ what, short: text.length < 8 * 1024 }).toEqual({ what, short: true });
  const json = JSON.parse(text) as { status?: string; error?: { code?: string } };
  expect({ what, shaped: typeof json.status === 'string' || typeof json.error?.code === 'string' }).toEqual({ what, shaped: true });
}

describe('webhook body fuzzing (seeded, fixed budget)', () => {
  it('GitHub: signed hostile deliveries (JSON and form-encoded) never answer 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(body, githubEvent, fc.boolean(), async (b, event, form) => {
        const raw = form ? Buffer.from(new URLSearchParams({ payload: b.toString('utf8') }).toString()) : b;
        const res = await fetch(`${server.url}/webhooks/github`, {
          method: 'POST',
          body: raw,
          headers: { 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json', 'x-github-event': event, 'x-github-delivery': delivery(), 'x-hub-signature-256': sign(raw) },
        });
        await check(res, `github ${event} ${raw.subarray(0, 80).toString('utf8')}`);
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it('GitLab: hostile deliveries with the right token never answer 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(body, gitlabEvent, async (b, event) => {
        const res = await fetch(`${server.url}/webhooks/gitlab`, {
          method: 'POST',
          body: b,
          headers: { 'content-type': 'application/json', 'x-gitlab-token': TOKEN, 'x-gitlab-event': event, 'x-gitlab-event-uuid': delivery() },
        });
        await check(res, `gitlab ${event} ${b.subarray(0, 80).toString('utf8')}`);
      }),
      { seed: SEED + 1, numRuns: RUNS },
    );
  });

  it('every trigger handed on has string fields and a known event; nothing was polluted; a plain push still goes through', async () => {
    for (const t of triggers) {
      expect({ event: KNOWN_EVENTS.has(t.event), repository: typeof t.repository, delivery: typeof t.deliveryId }).toEqual({ event: true, repository: 'string', delivery: 'string' });
      for (const v of [t.ref, t.sha]) expect(['string', 'undefined']).toContain(typeof v);
    }
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    const push = Buffer.from(JSON.stringify({ ref: 'refs/heads/main', after: 'c'.repeat(40), repository: { full_name: 'acme/after-fuzz' } }));
    const res = await fetch(`${server.url}/webhooks/github`, { method: 'POST', body: push, headers: { 'content-type': 'application/json', 'x-github-event': 'push', 'x-github-delivery': delivery(), 'x-hub-signature-256': sign(push) } });
    expect(res.status).toBe(202);
    expect(triggers.at(-1)).toMatchObject({ repository: 'acme/after-fuzz' });
  });
});
