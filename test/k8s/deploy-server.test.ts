/**
 * The webhooks mounted in the deploy server (`admission.enabled`): a bundle the server verified
 * (here through /api/v1/verify, as a deploy does) is admitted from the learnt verdict even after
 * the registry has gone away; a bundle it never verified needs the registry, and is denied
 * without it.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deployPipeline } from '../../server/deploy/wire.js';
import { profileNameFor } from '../../src/profiles/apparmor/names.js';
import { testServer } from '../server/support.js';
import { interruptAndWait, repoRoot } from '../support/cli.js';
import { k8sFixture, type K8sFixture } from './fixture.js';
import { pod, reviewOf } from './requests.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let fx: K8sFixture;
let server: Awaited<ReturnType<typeof testServer>>;
const KEY = 'ctk_admin_k8s_test_key_0123456789abcdef';

beforeAll(async () => {
  fx = await k8sFixture();
  server = await testServer(
    {
      trustStore: fx.trustStorePath,
      policies: fx.policiesDir,
      registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host] },
      adminApiKey: KEY,
      admission: { enabled: true, environments: ['production', 'trial'], auditEnvironments: ['trial'], exemptImages: ['docker.io/istio/proxyv2'] },
    },
    { extend: (ctx) => deployPipeline(ctx) },
  );
}, 120_000);
afterAll(async () => {
  await server?.close();
  await fx?.cleanup();
});

// No AppArmor profile: this server's config does not say the nodes enforce AppArmor (admission.nodesAppArmor).
const sc = (d: string) => ({ allowPrivilegeEscalation: false, runAsUser: 65534, runAsGroup: 65534, runAsNonRoot: true, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] }, seccompProfile: { type: 'Localhost', localhostProfile: `operator/${profileNameFor('hello', d)}.json` } });
const post = async (path: string, body: unknown): Promise<{ status: number; json: Obj }> => {
  const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) });
  return { status: r.status, json: (await r.json()) as Obj };
};

describe('admission in the deploy server', () => {
  it('admits from the verdict the server pre-computed when it verified; the rest needs the registry', async () => {
    const v = await post('/api/v1/verify', { reference: fx.refs.v1, environment: 'staging' });
    expect(v.json).toMatchObject({ decision: 'ALLOW' });
    // The bundle carries an AppArmor profile, and these nodes do not enforce AppArmor: none is set
    // (the kubelet would refuse the pod), and the pod without one is admitted.
    const m = await post('/admission/mutate/production', reviewOf(pod([{ name: 'web', image: fx.refs.v1 }])));
    const patch = JSON.parse(Buffer.from(m.json.response.patch, 'base64').toString('utf8')) as { path: string; value: unknown }[];
    expect(patch).toEqual([{ op: 'add', path: '/spec/containers/0/securityContext', value: sc(fx.digests.v1) }]);
    await fx.registry.stop();
    const ok = await post('/admission/validate/production', reviewOf(pod([{ name: 'web', image: fx.refs.v1, securityContext: sc(fx.digests.v1) }])));
    expect(ok.status).toBe(200);
    expect({ allowed: ok.json.response.allowed, message: ok.json.response.status?.message }).toEqual({ allowed: true, message: undefined });
    // Said, not silent: kubectl prints it.
    expect(ok.json.response.warnings).toEqual(['web: runs without its bundle\'s AppArmor profile: the nodes are not said to enforce AppArmor (--nodes-apparmor)']);
    // What ct k8s render writes (and templates patched before) carries the bundle's own profile: accepted.
    const rendered = { ...sc(fx.digests.v1), appArmorProfile: { type: 'Localhost', localhostProfile: profileNameFor('hello', fx.digests.v1) } };
    const own = await post('/admission/validate/production', reviewOf(pod([{ name: 'web', image: fx.refs.v1, securityContext: rendered }])));
    expect({ allowed: own.json.response.allowed, message: own.json.response.status?.message, warnings: own.json.response.warnings }).toEqual({ allowed: true, message: undefined, warnings: undefined });
    const other = await post('/admission/validate/production', reviewOf(pod([{ name: 'web', image: fx.refs.v2, securityContext: sc(fx.digests.v2) }])));
    expect(other.json.response.allowed).toBe(false);
    expect(other.json.response.status.code).toBe(503);
    expect((await post('/admission/validate/staging', reviewOf(pod([{ name: 'web', image: fx.refs.v1 }])))).status).toBe(404);
  });

  it('admission.auditEnvironments allow what they would deny, saying why; admission.exemptImages are not judged', async () => {
    // The registry is gone (above): v2 cannot be verified, a denial where enforced, a warning in the trial.
    const trial = await post('/admission/validate/trial', reviewOf(pod([{ name: 'web', image: fx.refs.v2, securityContext: sc(fx.digests.v2) }])));
    expect(trial.json.response).toMatchObject({ allowed: true });
    expect(trial.json.response.warnings[0]).toMatch(/^audit: would be denied: \[(NETWORK_ERROR|REGISTRY_ERROR)\]/);
    const sidecar = await post('/admission/validate/production', reviewOf(pod([{ name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.24.0' }])));
    expect({ allowed: sidecar.json.response.allowed, message: sidecar.json.response.status?.message }).toEqual({ allowed: true, message: undefined });
    // Counted in the server's own /metrics.
    const metrics = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
    expect(metrics).toMatch(/^ct_admission_requests_total\{webhook="validate",environment="trial",outcome="audited",code="(NETWORK_ERROR|REGISTRY_ERROR)"\} 1$/m);
  });
});

describe('admission callers authenticated by bearer token (admission.tokenFile)', () => {
  const T1 = 'adm-token-one-0123456789abcdef';
  const T2 = 'adm-token-two-0123456789abcdef';

  it('refuses callers without a listed token before reading the body; follows a rotated file; refuses to start on a bad one', async () => {
    const file = join(fx.dir, 'admission-tokens');
    writeFileSync(file, `# the API server's kubeconfig token\n${T1}\n`);
    const config = { trustStore: fx.trustStorePath, policies: fx.policiesDir, registries: { allow: [fx.registry.host], allowedAddresses: ['127.0.0.1'] }, adminApiKey: KEY, admission: { enabled: true, environments: ['production'], tokenFile: file } };
    const s = await testServer(config, { extend: (ctx) => deployPipeline(ctx) });
    try {
      const review = JSON.stringify(reviewOf(pod([{ name: 'web', image: fx.refs.v1, securityContext: sc(fx.digests.v1) }])));
      const call = (token?: string, body = review) => fetch(`${s.url}/admission/validate/production`, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body });
      for (const token of [undefined, 'wrong-token-0123456789abcdef', KEY, `${T1}x`]) {
        const r = await call(token);
        expect(r.status).toBe(401);
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
        expect(((await r.json()) as Obj).code).toBe('ADMISSION_UNAUTHENTICATED');
      }
      // Not parsed without the token: a body that is not JSON still gets 401, not 400.
      expect((await call(undefined, '{"apiVersion":')).status).toBe(401);
      expect((await fetch(`${s.url}/admission/healthz`)).status).toBe(401);
      const ok = await call(T1);
      expect(ok.status).toBe(200);
      expect(((await ok.json()) as Obj).response.uid).toBeDefined();
      // Rotation: the new file lists only T2.
      writeFileSync(file, `${T2}\n`);
      for (let i = 0; i < 100 && (await call(T1)).status !== 401; i++) await new Promise((r) => setTimeout(r, 100));
      expect((await call(T1)).status).toBe(401);
      expect((await call(T2)).status).toBe(200);
      // A broken rewrite (empty) keeps T2.
      writeFileSync(file, '');
      await new Promise((r) => setTimeout(r, 400));
      expect((await call(T2)).status).toBe(200);
    } finally {
      await s.close();
    }
    writeFileSync(file, 'short\n');
    await expect(testServer(config, { extend: (ctx) => deployPipeline(ctx) })).rejects.toMatchObject({ code: 'ADMISSION_TOKEN_FILE_INVALID' });
  }, 60_000);
});

describe('ct serve with admission enabled', () => {
  it('prints the webhooks\' addresses and whether their callers are authenticated', async () => {
    const config = join(fx.dir, 'serve-admission.json');
    const data = join(fx.dir, 'serve-admission-data');
    writeFileSync(config, JSON.stringify({ trustStore: fx.trustStorePath, policies: fx.policiesDir, admission: { enabled: true, environments: ['production'] } }));
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'serve'], { env: { ...process.env, PORT: '0', CT_CONFIG: config, CT_DATA_DIR: data, CT_ADMIN_API_KEY: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    try {
      for (const end = Date.now() + 30_000; !out.includes('admission:') && child.exitCode === null && Date.now() < end;) await new Promise((r) => setTimeout(r, 100));
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      expect(out).toContain(`  admission: ${url}/admission/mutate/<env>   ${url}/admission/validate/<env>   (production; no caller is authenticated: set admission.tokenFile; AppArmor on the nodes: not said (admission.nodesAppArmor): bundles' AppArmor profiles are not set)`);
    } finally {
      await interruptAndWait(child);
    }
  }, 60_000);
});
