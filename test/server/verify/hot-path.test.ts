/**
 * The cached /api/v1/verify answered before express (server/verify/hot-path.ts): the same bytes
 * as the route, never without authentication, bodies read exactly as express.json reads them,
 * a policy reload seen at once, and nothing a client does mid-request takes the server down.
 */
import { request } from 'node:http';
import { connect } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import YAML from 'yaml';
import { loadConfig } from '../../../server/config.js';
import { startServer, type RunningServer } from '../../../server/start.js';
import { deployPipeline } from '../../../server/deploy/wire.js';
import { createApiKey } from '../../../server/auth/api-keys.js';
import { loopFixture, type LoopFixture } from '../../e2e/fixture.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

describe('cached /api/v1/verify', () => {
  let fx: LoopFixture;
  let server: RunningServer;
  let admin: string;
  let reference: string;
  const staging = (predicateType: string) => YAML.stringify({
    apiVersion: 'cerro-torre.dev/v2', kind: 'Policy', name: 'staging', mode: 'strict', match: { environments: ['staging'] },
    signers: [{ role: 'builders' }], attestations: [{ predicateType }], logQuorum: 2,
  });

  /** A POST with exactly these bytes; `chunked` leaves out Content-Length (the hot path is not taken then). */
  const post = (body: Buffer | string, headers: Record<string, string>, chunked = false): Promise<Reply> => new Promise((resolve, reject) => {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
    const u = new URL(`${server.url}/api/v1/verify`);
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: chunked ? headers : { ...headers, 'content-length': String(bytes.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (chunked) req.write(bytes);
    req.end(chunked ? undefined : bytes);
  });
  const json = { 'content-type': 'application/json' };
  const auth = (key = admin) => ({ ...json, authorization: `Bearer ${key}` });
  const answers = async () => {
    const text = await server.ctx.metrics.registry.getSingleMetricAsString('ct_verify_answers_total');
    const count = (source: string) => Number(new RegExp(`source="${source}"} (\\d+)`).exec(text)?.[1] ?? 0);
    return { stored: count('stored'), computed: count('computed') };
  };
  /** An error answer without its per-request id. */
  const shape = (r: Reply) => {
    const b = JSON.parse(r.body.toString('utf8')) as { error?: { id?: string } };
    if (b.error) delete b.error.id;
    return { status: r.status, body: b };
  };

  beforeAll(async () => {
    fx = await loopFixture();
    writeFileSync(join(fx.policiesDir, 'staging.policy.yaml'), staging('https://slsa.dev/provenance/v1'));
    const config = loadConfig({}, {
      port: 0, host: '127.0.0.1', dataDir: `${fx.dir}/server`, policies: fx.policiesDir, trustStore: fx.trustStorePath,
      registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
    });
    server = await startServer(config, { log: pino({ level: 'silent' }), extend: (ctx) => deployPipeline(ctx) });
    admin = (await createApiKey(server.ctx.db, 'admin', 'admin')).key;
    reference = await fx.refs.good();
  }, 120_000);

  afterAll(async () => {
    await server?.close();
    await fx?.cleanup();
  });

  it('answers a repeated request from the stored answer, byte for byte what the route sends', async () => {
    const body = JSON.stringify({ reference, environment: 'staging' });
    // A token is taken by the hot path once it has passed the full check (here: another route).
    expect((await fetch(`${server.url}/api/v1/policies`, { headers: auth() })).status).toBe(200);
    const before = await answers();
    const first = await post(body, auth());
    expect(first.status).toBe(200);
    expect(JSON.parse(first.body.toString())).toMatchObject({ decision: 'ALLOW', allow: true, code: null });
    const second = await post(body, auth());
    const third = await post(body, auth());
    const after = await answers();
    expect(after.computed - before.computed).toBe(1);
    expect(after.stored - before.stored).toBe(2);
    const { date: _d1, ...h1 } = first.headers;
    const { date: _d2, ...h2 } = second.headers;
    expect(second.status).toBe(200);
    expect(second.body.equals(first.body)).toBe(true);
    expect(third.body.equals(first.body)).toBe(true);
    expect(h2).toEqual(h1);
    // The security headers are those every other answer carries.
    expect(h2['content-security-policy']).toContain("default-src 'none'");
    expect(h2['content-type']).toBe('application/json; charset=utf-8');
    // The same request through express only (chunked: no Content-Length) gets the same bytes.
    const plain = await post(body, auth(), true);
    expect(plain.body.equals(first.body)).toBe(true);
    expect((await answers()).computed - after.computed).toBe(1);
  }, 60_000);

  it('never hands a stored answer to a caller that is not authenticated', async () => {
    const body = JSON.stringify({ reference, environment: 'staging' });
    await post(body, auth());
    const before = await answers();
    expect(shape(await post(body, json))).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHENTICATED' } } });
    expect(shape(await post(body, auth(`${admin}x`)))).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHENTICATED' } } });
    expect(shape(await post(body, auth('ctk_nobody')))).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHENTICATED' } } });
    expect(shape(await post(body, { ...json, authorization: 'Basic YTpi' }))).toMatchObject({ status: 401 });
    expect((await answers()).stored).toBe(before.stored);
    // A viewer may verify: after its first (full) authentication it is answered from the cache too.
    const viewer = (await createApiKey(server.ctx.db, 'viewer', 'viewer')).key;
    expect((await post(body, auth(viewer))).status).toBe(200);
    expect((await post(body, auth(viewer))).status).toBe(200);
    expect((await answers()).stored).toBe(before.stored + 1);
  }, 60_000);

  it('reads a body exactly as express.json does (the same bytes sent with and without Content-Length)', async () => {
    const deep = `${'['.repeat(100)}${']'.repeat(100)}`;
    const bodies: (string | Buffer)[] = [
      JSON.stringify({ reference, environment: 'staging' }),
      `\ufeff${JSON.stringify({ reference, environment: 'staging' })}`,
      ` \n\t${JSON.stringify({ reference })}  `,
      '',
      '   ',
      '{}',
      '[]',
      '"just a string"',
      '42',
      'null',
      '{"reference": ',
      '{"reference": 5}',
      '{"reference": "not a reference"}',
      `{"digest": "sha256:${'9'.repeat(64)}"}`,
      deep,
      `{"a":${deep}}`,
      Buffer.concat([Buffer.from('{"reference": "'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]),
      Buffer.from([0xef, 0xbb, 0xbf]),
      '{"reference": "\\ud800"}',
      JSON.stringify({ reference, environment: 'staging', extra: 'x'.repeat(3000) }),
    ];
    for (const b of bodies) {
      // Twice through the hot path (the second may be a stored answer), once through express alone.
      const hot = await post(b, auth());
      const again = await post(b, auth());
      const plain = await post(b, auth(), true);
      const label = Buffer.isBuffer(b) ? b.toString('hex') : b.slice(0, 60);
      expect({ label, ...shape(hot) }).toEqual({ label, ...shape(plain) });
      expect({ label, ...shape(again) }).toEqual({ label, ...shape(plain) });
    }
    // Content types and encodings the hot path leaves to express are answered as before.
    expect(shape(await post('{}', { ...auth(), 'content-type': 'text/plain' }))).toEqual(shape(await post('{}', { ...auth(), 'content-type': 'text/plain' }, true)));
    expect((await post('{}', { ...auth(), 'content-type': 'application/json; charset=latin1' })).status).toBe(415);
  }, 90_000);

  it('sees a policy reload at once: the stored answer is not used under another policy set', async () => {
    const body = JSON.stringify({ reference, environment: 'staging', policy: 'staging' });
    expect(JSON.parse((await post(body, auth())).body.toString())).toMatchObject({ decision: 'ALLOW' });
    expect(JSON.parse((await post(body, auth())).body.toString())).toMatchObject({ decision: 'ALLOW' });
    const reload = async () => {
      const r = await fetch(`${server.url}/api/v1/policies/reload`, { method: 'POST', headers: auth() });
      expect(r.status).toBe(200);
    };
    try {
      writeFileSync(join(fx.policiesDir, 'staging.policy.yaml'), staging('https://example.com/never-attested/v1'));
      await reload();
      const denied = JSON.parse((await post(body, auth())).body.toString()) as { decision: string; code: string };
      expect(denied.decision).toBe('REJECT');
      expect(JSON.parse((await post(body, auth())).body.toString())).toEqual(denied);
    } finally {
      writeFileSync(join(fx.policiesDir, 'staging.policy.yaml'), staging('https://slsa.dev/provenance/v1'));
      await reload();
    }
    expect(JSON.parse((await post(body, auth())).body.toString())).toMatchObject({ decision: 'ALLOW' });
  }, 60_000);

  it('survives clients that stop mid-body or pipeline requests', async () => {
    const body = JSON.stringify({ reference, environment: 'staging' });
    await post(body, auth());
    const raw = (text: string) => new Promise<string>((resolve) => {
      const u = new URL(server.url);
      const s = connect(Number(u.port), u.hostname, () => s.write(text));
      let got = '';
      s.on('data', (d) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
      setTimeout(() => s.destroy(), 1500);
    });
    const head = (length: number) => `POST /api/v1/verify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nauthorization: Bearer ${admin}\r\ncontent-length: ${length}\r\n\r\n`;
    // Announces 100 bytes, sends 10, goes away.
    await raw(`${head(100)}{"referenc`);
    // Announces a body, sends headers only, goes away.
    await raw(head(40));
    // Two pipelined requests on one connection: two answers, in order.
    const two = await raw(`${head(body.length)}${body}${head(body.length)}${body}`);
    expect(two.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
    // Still serving.
    expect((await post(body, auth())).status).toBe(200);
  }, 60_000);
});
