/**
 * GitHub webhooks as GitHub sends them: every example payload of @octokit/webhooks-examples for the
 * events the server handles, delivered signed both as `application/json` and as
 * `application/x-www-form-urlencoded` (GitHub's default content type: the JSON in `payload=`),
 * is accepted and triggers a reconcile of the payload's repository; none gets a 5xx. A form-encoded
 * delivery is verified on its raw body: a bad signature is refused with BAD_SIGNATURE.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHmac, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { testServer } from './support.js';
import { GITHUB_EVENTS, type WebhookTrigger } from '../../server/routes/webhooks.js';

const SECRET = 'examples-secret';
const sign = (body: string, secret = SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
interface ExampleSet { name: string; examples: Record<string, unknown>[] }
const ALL = createRequire(import.meta.url)('@octokit/webhooks-examples') as ExampleSet[];
const HANDLED = ALL.filter((e) => GITHUB_EVENTS.has(e.name));
const CASES = HANDLED.flatMap((e) => e.examples.map((payload, i) => [`${e.name} #${i}`, e.name, payload] as const));
const form = (json: string) => new URLSearchParams({ payload: json }).toString();

describe('GitHub webhook examples, JSON and form-encoded', () => {
  let server: Awaited<ReturnType<typeof testServer>>;
  const triggers: WebhookTrigger[] = [];
  beforeAll(async () => {
    server = await testServer({ github: { apiUrl: 'http://127.0.0.1:1', webhookSecrets: [SECRET] }, maxBodyBytes: 1024 * 1024 });
    server.ctx.onTrigger = async (t) => void triggers.push(t);
  });
  afterAll(() => server.close());

  const deliver = (event: string, body: string, contentType: string, signature = sign(body)) =>
    fetch(`${server.url}/webhooks/github`, { method: 'POST', body, headers: { 'content-type': contentType, 'x-github-event': event, 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signature } });

  it('covers the events the server handles that have examples', () => {
    expect(HANDLED.map((e) => e.name).sort()).toEqual(expect.arrayContaining(['deployment', 'package', 'push', 'workflow_run']));
    expect(CASES.length).toBeGreaterThanOrEqual(15);
  });

  it.each(CASES)('%s: accepted as JSON and as form-encoded, for its repository', async (_label, event, payload) => {
    const json = JSON.stringify(payload);
    const repo = (payload.repository as { full_name: string }).full_name;
    for (const [type, body] of [['application/json', json], ['application/x-www-form-urlencoded', form(json)]] as const) {
      const before = triggers.length;
      const res = await deliver(event, body, type);
      expect([type, res.status, await res.json()]).toEqual([type, 202, expect.objectContaining({ status: 'accepted' })]);
      expect(triggers.slice(before).map((t) => [t.event, t.repository])).toEqual([[event, repo]]);
    }
  });

  it('a form-encoded delivery is verified on its raw body: a bad or re-encoded signature is refused', async () => {
    const json = JSON.stringify(HANDLED.find((e) => e.name === 'push')!.examples[0]);
    const before = triggers.length;
    for (const signature of [sign(form(json), 'wrong-secret'), sign(json)]) {
      const res = await deliver('push', form(json), 'application/x-www-form-urlencoded', signature);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BAD_SIGNATURE');
    }
    expect(triggers.length).toBe(before);
  });

  it('a signed form-encoded body without a JSON payload field is a clear 400', async () => {
    for (const body of ['zen=hi', `payload=${encodeURIComponent('{"repository":')}`]) {
      const res = await deliver('push', body, 'application/x-www-form-urlencoded');
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'JSON_INVALID', message: expect.stringContaining('payload') });
    }
  });
});
