/**
 * A bundle signed only keylessly (as the build action signs without a key), pushed to a real
 * docker-registry, judged where bundles are judged beside policies: the deploy server's
 * /api/v1/verify and `ct admission`'s webhooks. The policies' keyless signers are the identities
 * trusted; a policy that names another workflow denies (SIGNER_NOT_ALLOWED), and once no policy
 * names the bundle's identity any more its attestations are refused (IDENTITY_MISMATCH).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import jsonpatch from 'fast-json-patch';
import { startAdmission, type RunningAdmission } from '../../server/admission/main.js';
import { deployPipeline } from '../../server/deploy/wire.js';
import { pushCtp } from '../../src/oci/push.js';
import { testServer } from '../server/support.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { GH_ISSUER, GH_SAN, rootOf, writeKeylessCtp } from '../sigstore/fixtures.js';
import { makeCert } from './fixture.js';
import { pod, reviewOf, webhookClient, type WebhookClient } from './requests.js';
import { AdmissionJudge } from '../../src/k8s/verdicts.js';
import { PolicyStore } from '../../src/policy/store.js';
import { trustKeyOf } from '../../src/verify/report.js';
import { withPolicyKeyless } from '../../src/policy/keyless-trust.js';
import { loadTrustStore } from '../../src/trust/store.js';
import { trustMaterial } from '../../src/verify/trust-material.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const OTHER_SAN = 'https://github.com/acme/other/.github/workflows/release.yml@refs/heads/main';
const KEY = 'ctk_admin_keyless_test_key_0123456789abcdef';

let dir: string;
let m: SigstoreMock;
let registry: TestRegistry;
let ref: string;
let server: Awaited<ReturnType<typeof testServer>>;
let adm: RunningAdmission;
let client: WebhookClient;

const policy = (name: string, san: string) =>
  ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', `name: ${name}`, 'mode: strict', 'match:', `  environments: [${name}]`, 'signers:', `  - issuer: ${GH_ISSUER}`, `    subject: ${san}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document', 'logQuorum: 1', ''].join('\n');

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ct-k8s-keyless-'));
  m = await startSigstoreMock();
  const signed = await writeKeylessCtp(m, dir);
  registry = await startRegistry();
  const pushed = await pushCtp(signed, `${registry.host}/acme/app:1.0.0`, { allowedAddresses: ['127.0.0.1'], plainHttp: true });
  ref = `${registry.host}/acme/app@${pushed.imageDigest}`;
  // No key at all: the trust store is empty; the Sigstore services' root is the mock's.
  writeFileSync(join(dir, 'trust.json'), JSON.stringify({ version: 1, id: 'keyless', updated: '2026-01-01T00:00:00Z', keys: {}, thresholds: {}, logs: {} }));
  writeFileSync(join(dir, 'root.json'), JSON.stringify(m.trustedRoot));
  mkdirSync(join(dir, 'policies'));
  writeFileSync(join(dir, 'policies/production.policy.yaml'), policy('production', GH_SAN));
  writeFileSync(join(dir, 'policies/staging.policy.yaml'), policy('staging', OTHER_SAN));
  const registries = { allow: [registry.host], allowedAddresses: ['127.0.0.1'], insecure: [registry.host] };
  server = await testServer({ trustStore: join(dir, 'trust.json'), trustedRoot: join(dir, 'root.json'), policies: join(dir, 'policies'), registries, adminApiKey: KEY }, { extend: (ctx) => deployPipeline(ctx) });
  mkdirSync(join(dir, 'tls'));
  const tls = makeCert(join(dir, 'tls'));
  adm = await startAdmission(
    {
      host: '127.0.0.1', port: 0, certFile: tls.cert, keyFile: tls.key,
      trustStore: join(dir, 'trust.json'), trustedRoot: join(dir, 'root.json'), policies: [join(dir, 'policies')],
      registry: { allowedRegistries: [registry.host], allowedAddresses: ['127.0.0.1'], insecure: [registry.host], noDockerConfig: true, timeoutMs: 30_000 },
    },
    pino({ level: 'silent' }),
  );
  client = webhookClient(adm.url, tls.cert);
}, 120_000);
afterAll(async () => {
  await adm?.close();
  await server?.close();
  await registry?.stop();
  await m?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const verify = async (environment: string): Promise<Obj> => {
  const r = await fetch(`${server.url}/api/v1/verify`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: JSON.stringify({ reference: ref, environment }) });
  expect(r.status).toBe(200);
  return (await r.json()) as Obj;
};

/** Mutate, apply the patch, validate: what the API server does with a pod. */
async function admit(environment: string): Promise<Obj> {
  const object = pod([{ name: 'app', image: ref }]);
  const mu = await client.post(`/mutate/${environment}`, reviewOf(object));
  expect(mu.status).toBe(200);
  if (!mu.json.response.allowed) return mu.json.response;
  const patch = mu.json.response.patch ? JSON.parse(Buffer.from(mu.json.response.patch, 'base64').toString('utf8')) : [];
  const patched = jsonpatch.applyPatch(structuredClone(object), patch).newDocument;
  const va = await client.post(`/validate/${environment}`, reviewOf(patched));
  expect(va.status).toBe(200);
  return va.json.response;
}

describe('keyless bundles beside policies', () => {
  it('the deploy server verifies with the policies\' keyless signers; each policy judges its own', async () => {
    expect(await verify('production')).toMatchObject({ decision: 'ALLOW', code: null });
    const staging = await verify('staging');
    expect(staging).toMatchObject({ decision: 'REJECT', code: 'SIGNER_NOT_ALLOWED' });
    // The refusal names who actually signed.
    expect(staging.message).toContain(GH_SAN);
  });

  it('admission admits it where a policy names its identity, and denies it elsewhere', async () => {
    expect(await admit('production')).toMatchObject({ allowed: true });
    const staging = await admit('staging');
    expect(staging.allowed).toBe(false);
    expect(staging.status.message).toMatch(/SIGNER_NOT_ALLOWED/);
  });

  it('once no policy names its identity, its attestations are refused with the identity they carry', async () => {
    writeFileSync(join(dir, 'policies/production.policy.yaml'), policy('production', OTHER_SAN));
    // What the periodic reload does (every policyReloadSeconds), now.
    expect((await adm.policies.reload()).ok).toBe(true);
    const answer = await admit('production');
    expect(answer.allowed).toBe(false);
    expect(answer.status.message).toMatch(/IDENTITY_MISMATCH/);
    expect(answer.status.message).toContain(GH_SAN);
  });

  it('a verdict the deploy server reached under other policies is not learnt by admission', async () => {
    const policies = new PolicyStore([join(dir, 'policies')]);
    expect((await policies.reload()).ok).toBe(true);
    const store = trustMaterial(await loadTrustStore(join(dir, 'trust.json')));
    const judge = new AdmissionJudge({ trust: () => store, policies: () => policies.current, registry: { allowedRegistries: [] } });
    const image = { reference: ref, imageDigest: ref.split('@')[1], bundleDigest: `sha256:${'0'.repeat(64)}`, evidence: { attestations: [] } as never, facts: {} as never, integrity: [] };
    judge.learn({ ...image, trustKey: trustKeyOf(withPolicyKeyless(store, undefined)) });
    expect(judge.stats.learned).toBe(0);
    judge.learn({ ...image, trustKey: trustKeyOf(withPolicyKeyless(store, policies.current)) });
    expect(judge.stats.learned).toBe(1);
  });

  it('a cached admission verdict does not outlive the expiry of a policy that decided it', async () => {
    // Production's own policy, and a freeze that denies until it expires (it names only a key, so
    // the trusted identities, and with them the cache keys, do not change when it expires).
    const pdir = join(dir, 'expiring-policies');
    mkdirSync(pdir);
    writeFileSync(join(pdir, 'production.policy.yaml'), policy('production', GH_SAN));
    const expires = new Date(Date.now() + 3_000).toISOString();
    writeFileSync(join(pdir, 'freeze.policy.yaml'), ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: freeze', 'mode: strict', `expires: '${expires}'`, 'match:', '  environments: [production]', 'signers:', `  - keyId: sha256:${'1'.repeat(64)}`, ''].join('\n'));
    const policies = new PolicyStore([pdir]);
    expect((await policies.reload()).ok).toBe(true);
    const store = trustMaterial(await loadTrustStore(join(dir, 'trust.json')), rootOf(m));
    const judge = new AdmissionJudge({ trust: () => store, policies: () => policies.current, registry: { allowedRegistries: [registry.host], allowedAddresses: ['127.0.0.1'], insecure: [registry.host], noDockerConfig: true } });
    expect(await judge.judge(ref, 'production')).toMatchObject({ allow: false, code: 'SIGNER_NOT_ALLOWED' });
    await new Promise((r) => setTimeout(r, Date.parse(expires) - Date.now() + 50));
    expect(await judge.judge(ref, 'production')).toMatchObject({ allow: true });
  }, 30_000);
});
