/**
 * `ct admission serve` as an operator runs it (the built binary, its own process), and as a hostile
 * caller meets it: with `--client-ca`, a caller without a certificate the CA signed gets no answer
 * at all (the TLS handshake fails before any request is read), even after the certificate files
 * are rotated; the API server's certificate gets verdicts. With `--token-file` as well, a webhook
 * call also needs one of the file's bearer tokens, checked before the body is read.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { repoRoot } from '../support/cli.js';
import { admissionUrl, k8sFixture, makeCert, type K8sFixture } from './fixture.js';
import { pod, reviewOf } from './requests.js';

let fx: K8sFixture;
let child: ChildProcess;
let url: string;
let stderr = '';
const ca = { cert: '', key: '' };
const apiServer = { cert: '', key: '' };
const stranger = { cert: '', key: '' };
const TOKEN = 'kube-apiserver-admission-token-0123456789';

/** A CA and a client certificate it signs (as the API server's kubeconfig for webhooks holds). */
function clientPki(dir: string): void {
  const run = (args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  Object.assign(ca, { cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') });
  run(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=api-server-ca', '-keyout', ca.key, '-out', ca.cert]);
  Object.assign(apiServer, { cert: join(dir, 'apiserver.crt'), key: join(dir, 'apiserver.key') });
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=kube-apiserver', '-keyout', apiServer.key, '-out', join(dir, 'apiserver.csr')]);
  run(['x509', '-req', '-in', join(dir, 'apiserver.csr'), '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '2', '-out', apiServer.cert]);
  // Self-signed, same subject: what an attacker without the CA's key can present.
  Object.assign(stranger, makeCert(dir, 'stranger'));
}

beforeAll(async () => {
  fx = await k8sFixture();
  clientPki(fx.dir);
  const tokenFile = join(fx.dir, 'admission-tokens');
  writeFileSync(tokenFile, `# the API server's kubeconfig token\n${TOKEN}\n`);
  child = spawn(process.execPath, [
    join(repoRoot, 'bin', 'ct.js'), 'admission', 'serve', '--host', '127.0.0.1', '--port', '0',
    '--cert', fx.tls.cert, '--key', fx.tls.key, '--client-ca', ca.cert, '--token-file', tokenFile,
    '--trust-store', fx.trustStorePath, '--policies', fx.policiesDir,
    '--allow-registry', fx.registry.host, '--allow-address', '127.0.0.1', '--insecure-registry', fx.registry.host,
    '--environment', 'production',
  ], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'silent' } });
  child.stderr!.on('data', (d) => (stderr += d));
  url = await admissionUrl(child, 'ct admission serve', () => stderr);
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
  await fx?.cleanup();
});

async function post(path: string, body: unknown, client?: { cert: string; key: string }, raw?: string, token: string | null = TOKEN, method: 'POST' | 'GET' = 'POST'): Promise<{ status: number; headers: Record<string, unknown>; json: Record<string, any> }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const agent = new Agent({ connect: { ca: readFileSync(fx.tls.cert), servername: '', ...(client ? { cert: readFileSync(client.cert), key: readFileSync(client.key) } : {}) } });
  try {
    const headers = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const r = await request(`${url}${path}?timeout=10s`, { method, dispatcher: agent, headers, ...(method === 'POST' ? { body: raw ?? JSON.stringify(body) } : {}) });
    return { status: r.statusCode, headers: r.headers, json: (await r.body.json()) as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  } finally {
    await agent.close();
  }
}

describe('ct admission serve --client-ca', () => {
  it('answers the API server\'s certificate with a verdict; callers without one, or with one the CA did not sign, get nothing', async () => {
    const review = reviewOf(pod([{ name: 'web', image: fx.refs.v1 }]));
    const ok = await post('/validate/production', review, apiServer);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: (review.request as { uid: string }).uid } });
    await expect(post('/validate/production', review)).rejects.toThrow();
    await expect(post('/validate/production', review, stranger)).rejects.toThrow();
    expect(stderr).toBe('');
  });

  it('still demands the client certificate after the serving certificate is rotated', async () => {
    const next = makeCert(fx.dir, 'rotated');
    copyFileSync(next.key, fx.tls.key);
    copyFileSync(next.cert, fx.tls.cert);
    // The server polls every 5 s: wait until the rotated certificate is the one served.
    const review = reviewOf(pod([{ name: 'web', image: fx.refs.v1 }]));
    let served = false;
    for (let i = 0; i < 100 && !served; i++) {
      served = await post('/validate/production', review, apiServer).then(() => true, () => false);
      if (!served) await new Promise((r) => setTimeout(r, 200));
    }
    expect(served).toBe(true);
    await expect(post('/validate/production', review)).rejects.toThrow();
    await expect(post('/validate/production', review, stranger)).rejects.toThrow();
  }, 60_000);
});

describe('ct admission serve --token-file', () => {
  it('answers a webhook call without the token, or with another, 401 before reading its body; /healthz needs no token', async () => {
    const review = reviewOf(pod([{ name: 'web', image: fx.refs.v1 }]));
    for (const token of [null, 'kube-apiserver-admission-token-0123456788', `${TOKEN}x`]) {
      // A body that is not even JSON: a 401, not a 400, shows the caller was refused before any parse.
      const r = await post('/validate/production', undefined, apiServer, '{not json', token);
      expect(r.status).toBe(401);
      expect(r.headers['www-authenticate']).toMatch(/^Bearer realm=/);
      expect(r.json).toMatchObject({ code: 'ADMISSION_UNAUTHENTICATED', error: expect.stringContaining('--token-file') });
      expect((await post('/mutate/production', review, apiServer, undefined, token)).status).toBe(401);
    }
    const ok = await post('/validate/production', review, apiServer);
    expect(ok.status).toBe(200);
    expect(ok.json.response.uid).toBe((review.request as { uid: string }).uid);
    const health = await post('/healthz', undefined, apiServer, undefined, null, 'GET');
    expect(health.status).toBe(200);
    expect(health.json).toMatchObject({ status: 'ok', trust: { loads: 1, errors: 0 } });
  });
});

describe('hostile request lines and what operators see', () => {
  it('a request line that is no URL gets an error, not the end of the process; refusals are counted in /metrics', async () => {
    for (const target of ['//[', '//:99999', '//a b']) {
      const answer = await new Promise<string>((resolve, reject) => {
        const s = tlsConnect({ host: '127.0.0.1', port: Number(new URL(url).port), ca: readFileSync(fx.tls.cert), servername: '', cert: readFileSync(apiServer.cert), key: readFileSync(apiServer.key) }, () => s.write(`GET ${target} HTTP/1.1\r\nHost: webhook\r\nConnection: close\r\n\r\n`));
        let got = '';
        s.on('data', (d) => (got += d));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
      expect(answer).toMatch(/^HTTP\/1\.1 (400|401|404)/);
    }
    expect(child.exitCode).toBeNull();
    expect((await post('/healthz', undefined, apiServer, undefined, null, 'GET')).status).toBe(200);
    const agent = new Agent({ connect: { ca: readFileSync(fx.tls.cert), servername: '', cert: readFileSync(apiServer.cert), key: readFileSync(apiServer.key) } });
    try {
      expect((await request(`${url}/metrics`, { dispatcher: agent })).statusCode).toBe(401);
      const r = await request(`${url}/metrics`, { dispatcher: agent, headers: { authorization: `Bearer ${TOKEN}` } });
      const text = await r.body.text();
      expect(r.statusCode).toBe(200);
      // The callers refused for want of a token (above): what a rotated, mismatched token looks like.
      expect(Number(/^ct_admission_refused_total\{status="401"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(7);
    } finally {
      await agent.close();
    }
  });
});

describe('hostile bodies from an authenticated caller', () => {
  it('refuses a body nested deeper than any AdmissionReview before parsing it; a real one still passes', async () => {
    const review = reviewOf(pod([{ name: 'web', image: fx.refs.v1 }])) as { request: { object: Record<string, unknown> } };
    const text = JSON.stringify(review);
    const n = 1_000_000;
    // Under the 3 MiB body limit: the pod carries an extra field of a million nested arrays.
    const deep = text.replace('"kind":"Pod",', `"kind":"Pod","x":${'['.repeat(n)}${']'.repeat(n)},`);
    expect(deep.length).toBeLessThan(3 * 1024 * 1024);
    const r = await post('/validate/production', undefined, apiServer, deep);
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(/nested deeper than 64 levels/);
    // Kubernetes' own nesting (a CronJob's pod template with node affinity, managedFields) is far below.
    const ok = await post('/validate/production', review, apiServer);
    expect(ok.status).toBe(200);
  }, 60_000);
});
