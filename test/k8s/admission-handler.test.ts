/**
 * The admission handler as a hostile caller meets it (no caller is authenticated by default):
 * the bodies it holds at once are bounded (all requests together, one address's, until answered or the deadline), so that many large posts or a few stalled ones
 * cannot exhaust its memory (its restarts would deny every pod under failurePolicy Fail).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, request, type ClientRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { admissionHandler } from '../../server/admission/handler.js';
import type { ImageJudge } from '../../src/k8s/admit.js';

/** Verdicts wait until the test lets them go. */
let letGo: () => void = () => undefined;
const judge: ImageJudge = {
  pin: (image) => Promise.resolve(image),
  judge: (pinned) => new Promise((resolve) => (letGo = () => resolve({ reference: pinned, imageDigest: pinned.split('@')[1], bundleDigest: pinned.split('@')[1], allow: false, code: 'POLICY_VIOLATION', message: 'no', warnings: [], profiles: { capabilities: [], hostNetwork: false } }))),
};

let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer(admissionHandler({ judge, maxInFlightBytes: 64 * 1024 }));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** A DELETE review (passes without judging) padded to about `size` bytes. */
function review(size: number): Buffer {
  const base = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'b1c2d3e4-0000-4000-8000-000000000001', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'DELETE', oldObject: { metadata: { annotations: { pad: '' } } } } };
  base.request.oldObject.metadata.annotations.pad = 'x'.repeat(Math.max(0, size - JSON.stringify(base).length));
  return Buffer.from(JSON.stringify(base));
}

/** A pod to validate, padded to about `size` bytes. */
function podReview(size: number): Buffer {
  const image = `r.example/acme/app@sha256:${'a'.repeat(64)}`;
  const base = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: 'b1c2d3e4-0000-4000-8000-000000000002', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', object: { metadata: { annotations: { pad: '' } }, spec: { containers: [{ name: 'web', image }] } } } };
  base.request.object.metadata.annotations.pad = 'x'.repeat(Math.max(0, size - JSON.stringify(base).length));
  return Buffer.from(JSON.stringify(base));
}

function post(body: Buffer, send = body.length, path = '/validate/production'): { req: ClientRequest; answer: Promise<{ status: number; json: Record<string, unknown> }> } {
  const req = request({ host: '127.0.0.1', port, method: 'POST', path, headers: { 'content-type': 'application/json', 'content-length': body.length } });
  const answer = new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
    });
    req.on('error', reject);
  });
  if (send >= body.length) req.end(body);
  else req.write(body.subarray(0, send));
  return { req, answer };
}

describe('bodies held at once', () => {
  it('a request past the in-flight budget is refused (503) as it comes; the budget is given back when the holder goes', async () => {
    // Given back after each answer: four in a row hold more than the budget in all.
    for (let i = 0; i < 4; i++) expect((await post(review(30_000)).answer).status).toBe(200);
    // A caller that sends most of a large body and stalls holds its bytes.
    const stalled = post(review(60_000), 50_000);
    stalled.answer.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    const refused = await post(review(30_000)).answer;
    expect(refused.status).toBe(503);
    expect(String(refused.json.error)).toMatch(/holds 65536 bytes of requests already/);
    stalled.req.destroy();
    await new Promise((r) => setTimeout(r, 300));
    const again = await post(review(30_000)).answer;
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ response: { allowed: true } });
  });

  it('once answered at the deadline, a request holds nothing: a verification that hangs does not refuse unrelated calls', async () => {
    const late = await post(podReview(50_000), undefined, '/validate/production?timeout=1s').answer;
    expect(late.status).toBe(200);
    expect(late.json).toMatchObject({ response: { allowed: false, status: { message: expect.stringMatching(/^\[ADMISSION_DEADLINE\]/) } } });
    // The verification still hangs; its request's 50 kB no longer count.
    expect((await post(review(30_000)).answer).status).toBe(200);
    letGo();
  });

  it('a body not in by the deadline is dropped with its connection, and its bytes given back', async () => {
    const stalled = post(review(60_000), 50_000, '/validate/production?timeout=1s');
    const closed = stalled.answer.then(() => 'answered', () => 'closed');
    await new Promise((r) => setTimeout(r, 200));
    expect((await post(review(30_000)).answer).status).toBe(503);
    expect(await closed).toBe('closed');
    await new Promise((r) => setTimeout(r, 100));
    expect((await post(review(30_000)).answer).status).toBe(200);
  });
});

describe('bodies held at once by one caller', () => {
  let one: Server;
  let onePort: number;
  beforeAll(async () => {
    one = createServer(admissionHandler({ judge, maxBodyBytes: 64 * 1024, maxInFlightBytes: 128 * 1024 }));
    await new Promise<void>((r) => one.listen(0, '127.0.0.1', () => r()));
    onePort = (one.address() as AddressInfo).port;
  });
  afterAll(async () => {
    one.closeAllConnections();
    await new Promise((r) => one.close(r));
  });

  const from = (localAddress: string, body: Buffer, send = body.length) => {
    const req = request({ host: '127.0.0.1', port: onePort, localAddress, method: 'POST', path: '/validate/production', headers: { 'content-type': 'application/json', 'content-length': body.length } });
    const answer = new Promise<number>((resolve, reject) => {
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    if (send >= body.length) req.end(body);
    else req.write(body.subarray(0, send));
    return { req, answer };
  };

  it('are bounded by half the budget for one address; when every caller is authenticated, one address (the API server) may use it all', async () => {
    const burst = async (authenticated: boolean) => {
      const server = createServer(admissionHandler({ judge, maxBodyBytes: 64 * 1024, maxInFlightBytes: 256 * 1024, callersAuthenticated: authenticated }));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const port = (server.address() as AddressInfo).port;
      try {
        // Five bodies of one address, each stalled before its end: 250 kB held together.
        const held = [0, 1, 2, 3, 4].map(() => {
          const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/validate/production', headers: { 'content-type': 'application/json', 'content-length': 60_000 } });
          const answer = new Promise<number | 'held'>((resolve) => {
            req.on('response', (res) => (res.resume(), resolve(res.statusCode ?? 0)));
            req.on('error', () => resolve(0));
            setTimeout(() => resolve('held'), 800);
          });
          req.write(review(60_000).subarray(0, 50_000));
          return { req, answer };
        });
        const got = await Promise.all(held.map((h) => h.answer));
        for (const h of held) h.req.destroy();
        return got;
      } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    };
    // Unauthenticated: 128 kB for the address, so two are held and three refused.
    expect((await burst(false)).sort()).toEqual([503, 503, 503, 'held', 'held']);
    expect(await burst(true)).toEqual(['held', 'held', 'held', 'held', 'held']);
  });

  it('are bounded for one address, so that stalled callers of one address cannot take the budget of all', async () => {
    const stalled = [0, 1, 2, 3].map(() => from('127.0.0.2', review(60_000), 50_000));
    for (const s of stalled) s.answer.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    // The first holds its 50 kB; the others are refused past 64 kB for their address (not held
    // until the budget of all is taken), and another caller is served.
    expect(await Promise.all(stalled.slice(1).map((s) => Promise.race([s.answer, new Promise((r) => setTimeout(() => r('held'), 500))])))).toEqual([503, 503, 503]);
    expect(await from('127.0.0.1', review(30_000)).answer).toBe(200);
    for (const s of stalled) s.req.destroy();
  });
});
