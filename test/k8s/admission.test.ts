/**
 * Acceptance of the admission webhooks: AdmissionReview v1 requests shaped as the API server
 * sends them, over HTTPS to `ct admission serve`'s server, against signed bundles in a real
 * docker-registry. Mutations are applied with a JSON Patch library and the result is checked
 * against the expected spec and the Kubernetes schema.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { connect } from 'node:tls';
import { Agent, request } from 'undici';
import jsonpatch from 'fast-json-patch';
import pino from 'pino';
import { startAdmission, type RunningAdmission } from '../../server/admission/main.js';
import type { AdmissionDecisionRecord } from '../../server/admission/handler.js';
import { profileNameFor } from '../../src/profiles/apparmor/names.js';
import { AdmissionJudge, APPARMOR_NODES, failureOf, MAX_FETCHES, MAX_PINS } from '../../src/k8s/verdicts.js';
import { trustMaterial } from '../../src/verify/trust-material.js';
import { denyFor } from '../../src/k8s/admit.js';
import { CtError } from '../../src/core/errors.js';
import { freePort } from '../support/registry.js';
import { loadTrustStore, saveTrustStore } from '../../src/trust/store.js';
import { bumpVersion, revoke } from '../../src/trust/edit.js';
import { k8sFixture, makeCert, type K8sFixture } from './fixture.js';
import { cronJob, deployment, pod, replicationController, reviewOf, webhookClient, type WebhookClient } from './requests.js';
import { validateK8s } from './schema.js';
import { openCtp } from '../../src/bundle/read.js';
import { bundleFactsFromArchive } from '../../src/policy/bundle-facts.js';
import { renderK8s } from '../../src/k8s/render.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

let fx: K8sFixture;
let adm: RunningAdmission;
let client: WebhookClient;
let closedPort: number;
let hanging: Server;
let hangingPort: number;
const hangingSockets = new Set<import('node:net').Socket>();
const decisions: AdmissionDecisionRecord[] = [];

beforeAll(async () => {
  fx = await k8sFixture();
  closedPort = await freePort();
  // A "registry" that accepts connections and never answers: the deadline test.
  hanging = createServer((s) => void hangingSockets.add(s));
  await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', () => r()));
  hangingPort = (hanging.address() as { port: number }).port;
  const allowed = [fx.registry.host, `127.0.0.1:${closedPort}`, `127.0.0.1:${hangingPort}`];
  adm = await startAdmission(
    {
      host: '127.0.0.1',
      port: 0,
      certFile: fx.tls.cert,
      keyFile: fx.tls.key,
      trustStore: fx.trustStorePath,
      policies: [fx.policiesDir],
      registry: { allowedRegistries: allowed, allowedAddresses: ['127.0.0.1'], insecure: allowed, noDockerConfig: true, timeoutMs: 30_000 },
      certReloadMs: 100,
      trustReloadMs: 100,
      // The nodes of this "cluster" enforce AppArmor (test/k8s/deploy-server.test.ts: nodes that do not).
      nodesAppArmor: true,
      onDecision: (r) => decisions.push(r),
    },
    pino({ level: 'silent' }),
  );
  client = webhookClient(adm.url, fx.tls.cert);
}, 120_000);

afterAll(async () => {
  await client?.close();
  await adm?.close();
  for (const s of hangingSockets) s.destroy();
  hanging?.close();
  await fx?.cleanup();
});

const name = (digest: string) => profileNameFor('hello', digest);
const pinned = (d: string) => `${fx.registry.host}/acme/hello@${d}`;
const wantSc = (digest: string) => ({ allowPrivilegeEscalation: false, runAsUser: 65534, runAsGroup: 65534, runAsNonRoot: true, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] }, seccompProfile: { type: 'Localhost', localhostProfile: `operator/${name(digest)}.json` }, appArmorProfile: { type: 'Localhost', localhostProfile: name(digest) } });

/** Posts to /mutate, checks the answer's shape, applies its patch; returns the patched object. */
async function mutated(object: Obj, env = 'production', opts: Parameters<typeof reviewOf>[1] = {}): Promise<Obj> {
  const review = reviewOf(object, opts) as Obj;
  const { status, json } = await client.post(`/mutate/${env}`, review);
  expect(status).toBe(200);
  expect(json).toMatchObject({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch' } });
  const patch = JSON.parse(Buffer.from(json.response.patch, 'base64').toString('utf8'));
  return jsonpatch.applyPatch(structuredClone(object), patch, true, false).newDocument as Obj;
}

async function validated(object: Obj, env = 'production', opts: Parameters<typeof reviewOf>[1] = {}): Promise<Obj> {
  const review = reviewOf(object, opts) as Obj;
  const { status, json } = await client.post(`/validate/${env}`, review);
  expect(status).toBe(200);
  expect(json.apiVersion).toBe('admission.k8s.io/v1');
  expect(json.kind).toBe('AdmissionReview');
  expect(json.response.uid).toBe(review.request.uid);
  expect(typeof json.response.allowed).toBe('boolean');
  return json.response;
}

/** Allowed, and when not, the denial's message in the failure output. */
function expectAllowed(r: Obj): void {
  expect({ allowed: r.allowed, message: r.status?.message }).toEqual({ allowed: true, message: undefined });
}

describe('mutating webhook', () => {
  it('Pod: pins tags to the digest the registry names now and sets the bundle\'s profiles (init containers too)', async () => {
    const p = pod([{ name: 'web', image: fx.tagRef }, { name: 'side', image: fx.refs.v2, securityContext: { runAsUser: 1000 } }], { initContainers: [{ name: 'init', image: `${fx.registry.host}/acme/hello:1.0.0` }] });
    const out = await mutated(p);
    expect(out.spec.containers[0]).toEqual({ name: 'web', image: pinned(fx.digests.v1), securityContext: wantSc(fx.digests.v1) });
    // The pod's own runAsUser 1000 gives way to the manifest's user.
    expect(out.spec.containers[1]).toEqual({ name: 'side', image: fx.refs.v2, securityContext: wantSc(fx.digests.v2) });
    expect(out.spec.initContainers[0]).toEqual({ name: 'init', image: pinned(fx.digests.v1), securityContext: wantSc(fx.digests.v1) });
    expect(await validateK8s(out)).toEqual([]);
    // The mutated pod passes validation.
    expectAllowed(await validated(out));
  });

  it('Deployment, CronJob and ReplicationController: the pod template is patched at its own path', async () => {
    const dep = await mutated(deployment([{ name: 'web', image: fx.tagRef, ports: [{ containerPort: 8080 }] }]));
    expect(dep.spec.template.spec.containers[0]).toEqual({ name: 'web', image: pinned(fx.digests.v1), ports: [{ containerPort: 8080 }], securityContext: wantSc(fx.digests.v1) });
    expect(await validateK8s(dep)).toEqual([]);
    expectAllowed(await validated(dep));
    const cj = await mutated(cronJob([{ name: 'job', image: fx.refs.v2 }], [{ name: 'migrate', image: fx.tagRef }]));
    const spec = cj.spec.jobTemplate.spec.template.spec;
    expect(spec.containers[0].securityContext).toEqual(wantSc(fx.digests.v2));
    expect(spec.initContainers[0].image).toBe(pinned(fx.digests.v1));
    expect(await validateK8s(cj)).toEqual([]);
    expectAllowed(await validated(cj));
    // A ReplicationController (kubectl create of an old manifest, Kyverno's and policy-controller's
    // kinds too): pinned once for all its pods, and a weaker template refused at create, not pod by pod.
    const rc = await mutated(replicationController([{ name: 'web', image: fx.tagRef }]));
    expect(rc.spec.template.spec.containers[0]).toEqual({ name: 'web', image: pinned(fx.digests.v1), securityContext: wantSc(fx.digests.v1) });
    expect(await validateK8s(rc)).toEqual([]);
    expectAllowed(await validated(rc));
    const weak = structuredClone(rc);
    weak.spec.template.spec.containers[0].securityContext.privileged = true;
    const denied = await validated(weak);
    expect([denied.allowed, denied.status?.message]).toEqual([false, expect.stringMatching(/^\[SECURITY_CONTEXT_WEAKER\] containers\[0\] "web".*privileged: true/)]);
  });

  it('ephemeral containers (pods/ephemeralcontainers UPDATE): denied unpatched, allowed once mutated', async () => {
    const base = (await mutated(pod([{ name: 'web', image: fx.refs.v1 }]))) as Obj;
    const oldObject = structuredClone(base);
    const update = { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject };
    base.spec.ephemeralContainers = [{ name: 'debug', image: fx.refs.v1, securityContext: { capabilities: { add: ['SYS_PTRACE'] } } }];
    const denied = await validated(base, 'production', update);
    expect(denied.allowed).toBe(false);
    expect(denied.status.message).toMatch(/^\[SECURITY_CONTEXT_WEAKER\] ephemeralContainers\[0\] "debug".*SYS_PTRACE/);
    base.spec.ephemeralContainers = [{ name: 'debug', image: fx.refs.v1 }];
    const fixed = await mutated(base, 'production', update);
    expect(fixed.spec.ephemeralContainers[0].securityContext).toEqual(wantSc(fx.digests.v1));
    // The pod's own container, unchanged, is left as it is.
    expect(fixed.spec.containers).toEqual(oldObject.spec.containers);
    expectAllowed(await validated(fixed, 'production', update));
  });

  it('a name without a registry host is the Docker Hub image the kubelet would pull: judged as such, the denial naming it', async () => {
    for (const image of ['nginx:1.25', 'myorg/app:1.0']) {
      const review = reviewOf(pod([{ name: 'web', image }])) as Obj;
      const { json } = await client.post('/mutate/production', review);
      expect([json.response.allowed, json.response.status?.message]).toEqual([false, expect.stringMatching(new RegExp(`^\\[REGISTRY_NOT_ALLOWED\\] image ${JSON.stringify(image)}: .*docker\\.io`))]);
    }
  });

  it('UPDATE: what it leaves unchanged is not judged or patched again; what it changes is, within what a running pod may change', async () => {
    // A pod from before the namespace was watched: a tag, an image no bundle covers, its own security context.
    const before = pod([{ name: 'web', image: 'docker.io/library/nginx:1.25', securityContext: { runAsUser: 1000 } }]) as Obj;
    const relabelled = structuredClone(before);
    relabelled.metadata.labels.tier = 'frontend';
    for (const path of ['/mutate/production', '/validate/production']) {
      const review = reviewOf(relabelled, { operation: 'UPDATE', oldObject: before }) as Obj;
      expect((await client.post(path, review)).json.response).toEqual({ uid: review.request.uid, allowed: true });
    }
    // Being deleted (as the API server's own copy, oldObject, says): its finalizers go whatever its images are now.
    const deleting = structuredClone(relabelled);
    deleting.metadata.deletionTimestamp = '2026-12-06T10:00:00Z';
    deleting.metadata.finalizers = ['example.com/cleanup'];
    deleting.spec.containers[0].image = `127.0.0.1:${closedPort}/acme/hello:gone`;
    const finalized = structuredClone(deleting);
    finalized.metadata.finalizers = [];
    for (const path of ['/mutate/production', '/validate/production']) {
      const review = reviewOf(finalized, { operation: 'UPDATE', oldObject: deleting }) as Obj;
      expect((await client.post(path, review)).json.response).toEqual({ uid: review.request.uid, allowed: true });
    }
    // A deletionTimestamp only in the object the client sends counts for nothing; nor does an UPDATE without its old object.
    const claimed = await validated(finalized, 'production', { operation: 'UPDATE', oldObject: relabelled });
    expect([claimed.allowed, claimed.status?.message]).toEqual([false, expect.stringMatching(/^\[IMAGE_NOT_PINNED\] containers\[0\] "web"/)]);
    const noOld = reviewOf(relabelled, { operation: 'UPDATE' }) as Obj;
    noOld.request.oldObject = null;
    expect((await client.post('/validate/production', noOld)).json.response).toMatchObject({ allowed: false, status: { message: expect.stringMatching(/^\[IMAGE_NOT_PINNED\]/) } });
    // A running pod's image changed (the only change the API server lets through): pinned and
    // judged, its security context left to the validating webhook (which finds it weaker).
    const running = await mutated(pod([{ name: 'web', image: fx.refs.v1 }, { name: 'side', image: fx.refs.v1 }], { initContainers: [{ name: 'init', image: fx.refs.v1 }] }));
    const moved = structuredClone(running);
    moved.spec.containers[0].image = fx.tagRef;
    moved.spec.containers[0].securityContext = { runAsUser: 1000 };
    const out = await mutated(moved, 'production', { operation: 'UPDATE', oldObject: running });
    expect(out.spec.containers[0]).toEqual({ name: 'web', image: pinned(fx.digests.v1), securityContext: { runAsUser: 1000 } });
    expect(out.spec.containers[1]).toEqual(running.spec.containers[1]);
    const weaker = await validated(out, 'production', { operation: 'UPDATE', oldObject: running });
    expect([weaker.allowed, weaker.status?.message]).toEqual([false, expect.stringMatching(/^\[SECURITY_CONTEXT_WEAKER\] containers\[0\] "web"/)]);
    // Every container's denial is said, the first one's code first.
    const both = structuredClone(out);
    both.spec.containers[1].securityContext = { ...both.spec.containers[1].securityContext, privileged: true };
    const two = await validated(both, 'production');
    expect(two.status.message).toMatch(/^\[SECURITY_CONTEXT_WEAKER\] containers\[0\] "web": .*; also \[SECURITY_CONTEXT_WEAKER\] containers\[1\] "side": .*privileged: true/);
    // An init container's image changed to one no bundle covers: judged too.
    const initMoved = structuredClone(running);
    initMoved.spec.initContainers[0].image = `${fx.registry.host}/acme/nothing@sha256:${'e'.repeat(64)}`;
    const initJudged = await validated(initMoved, 'production', { operation: 'UPDATE', oldObject: running });
    expect(initJudged.allowed).toBe(false);
    expect(initJudged.status.message).toContain('acme/nothing@sha256:eeee');
    // A workload: a change outside its pod template (replicas) is not judged; one inside is, all of it.
    const dep = deployment([{ name: 'web', image: 'docker.io/library/nginx:1.25' }]) as Obj;
    const scaled = structuredClone(dep);
    scaled.spec.replicas = 5;
    expectAllowed(await validated(scaled, 'production', { operation: 'UPDATE', oldObject: dep }));
    const edited = structuredClone(scaled);
    edited.spec.template.spec.containers[0].env = [{ name: 'A', value: '1' }];
    const judged = await validated(edited, 'production', { operation: 'UPDATE', oldObject: scaled });
    expect([judged.allowed, judged.status?.message]).toEqual([false, expect.stringMatching(/^\[(IMAGE_NOT_PINNED|REGISTRY_NOT_ALLOWED)\]/)]);
  });
});

describe('capabilities: the manifest\'s, and none of the container runtime\'s defaults', () => {
  const ALL_DROPPED = { drop: ['ALL'], add: ['NET_BIND_SERVICE'] };

  it('mutation drops ALL and adds the manifest\'s (containers, init and ephemeral containers), keeping a stricter ask, leaving out and saying a wider one', async () => {
    const object = pod(
      [
        { name: 'web', image: fx.refs.v1 },
        // Asks one capability the manifest does not grant, and the manifest's own in its CAP_ spelling.
        { name: 'side', image: fx.refs.v1, securityContext: { capabilities: { add: ['NET_ADMIN', 'CAP_NET_BIND_SERVICE'], drop: ['NET_RAW'] } } },
      ],
      // Asks less than the manifest grants: kept.
      { initContainers: [{ name: 'init', image: fx.refs.v1, securityContext: { capabilities: { drop: ['ALL'] } } }] },
    ) as Obj;
    const review = reviewOf(object) as Obj;
    const { json } = await client.post('/mutate/production', review);
    expect(json.response).toMatchObject({ allowed: true, warnings: ['side: capabilities.add ["NET_ADMIN"] left out: granted ["NET_BIND_SERVICE"] (the manifest\'s that the policies allow)'] });
    const out = jsonpatch.applyPatch(structuredClone(object), JSON.parse(Buffer.from(json.response.patch, 'base64').toString('utf8')), true, false).newDocument as Obj;
    expect(out.spec.containers.map((c: Obj) => c.securityContext.capabilities)).toEqual([ALL_DROPPED, ALL_DROPPED]);
    expect(out.spec.initContainers[0].securityContext.capabilities).toEqual({ drop: ['ALL'] });
    expect(await validateK8s(out)).toEqual([]);
    expectAllowed(await validated(out));
    // An ephemeral container (kubectl debug) gets the same, whatever it asked.
    const update = { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: structuredClone(out) };
    out.spec.ephemeralContainers = [{ name: 'debug', image: fx.refs.v1, securityContext: { capabilities: { add: ['SYS_PTRACE'] } } }];
    const debug = await mutated(out, 'production', update);
    expect(debug.spec.ephemeralContainers[0].securityContext.capabilities).toEqual(ALL_DROPPED);
    expectAllowed(await validated(debug, 'production', update));
  });

  it('validation refuses a container, init container or ephemeral container keeping the runtime\'s defaults, or adding beyond the manifest', async () => {
    const good = await mutated(pod([{ name: 'web', image: fx.refs.v1 }], { initContainers: [{ name: 'init', image: fx.refs.v1 }] }));
    const cases: [string, (p: Obj) => void, RegExp][] = [
      ['no capabilities (the runtime\'s defaults: CHOWN, SETUID, NET_RAW, …)', (p) => delete p.spec.containers[0].securityContext.capabilities, /^\[SECURITY_CONTEXT_WEAKER\] containers\[0\] "web": .*capabilities\.drop must include "ALL" .*not unset/],
      ['an init container adding only', (p) => (p.spec.initContainers[0].securityContext.capabilities = { add: ['NET_BIND_SERVICE'] }), /^\[SECURITY_CONTEXT_WEAKER\] initContainers\[0\] "init": .*capabilities\.drop must include "ALL"/],
      ['the defaults dropped one by one but for NET_RAW', (p) => (p.spec.containers[0].securityContext.capabilities = { drop: ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'] }), /capabilities\.drop must include "ALL"/],
      ['"all" in lower case', (p) => (p.spec.containers[0].securityContext.capabilities = { drop: ['all'] }), /capabilities\.drop must include "ALL" .*not \["all"\]/],
      ['every capability added back', (p) => (p.spec.containers[0].securityContext.capabilities = { drop: ['ALL'], add: ['ALL'] }), /capabilities\.add \["ALL"\] beyond those granted \["NET_BIND_SERVICE"\]/],
    ];
    for (const [what, change, re] of cases) {
      const p = structuredClone(good);
      change(p);
      const r = await validated(p);
      expect([what, r.allowed, r.status?.message]).toEqual([what, false, expect.stringMatching(re)]);
    }
    const update = { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: structuredClone(good) };
    const debug = structuredClone(good);
    debug.spec.ephemeralContainers = [{ name: 'debug', image: fx.refs.v1, securityContext: { ...good.spec.containers[0].securityContext, capabilities: undefined } }];
    const r = await validated(debug, 'production', update);
    expect([r.allowed, r.status?.message]).toEqual([false, expect.stringMatching(/^\[SECURITY_CONTEXT_WEAKER\] ephemeralContainers\[0\] "debug": .*capabilities\.drop must include "ALL"/)]);
    // Fewer than the manifest grants is no weaker.
    const fewer = structuredClone(good);
    fewer.spec.containers[0].securityContext.capabilities = { drop: ['ALL'] };
    expectAllowed(await validated(fewer));
  });

  it('a pod gets what a host grants: the manifest\'s that the policies allow, none without a capabilities rule', async () => {
    // The quickstart policy has no runtime.capabilities rule: a host runs the bundle with none.
    const quick = await mutated(pod([{ name: 'web', image: fx.refs.v1, securityContext: { capabilities: { add: ['NET_BIND_SERVICE'] } } }]), 'quickstart');
    expect(quick.spec.containers[0].securityContext.capabilities).toEqual({ drop: ['ALL'] });
    expectAllowed(await validated(quick, 'quickstart'));
    // Validation allows exactly that set: the manifest's capability added back is beyond it.
    const readded = structuredClone(quick);
    readded.spec.containers[0].securityContext.capabilities.add = ['NET_BIND_SERVICE'];
    const r = await validated(readded, 'quickstart');
    expect([r.allowed, r.status?.message]).toEqual([false, expect.stringMatching(/^\[SECURITY_CONTEXT_WEAKER\] containers\[0\] "web": .*capabilities\.add \["NET_BIND_SERVICE"\] beyond those granted \[\]/)]);
    // A policy allowing NET_BIND_SERVICE, a manifest asking it and SYS_ADMIN (permissive: admitted, with a warning).
    const bind = await mutated(pod([{ name: 'web', image: fx.refs.v3 }]), 'bind');
    expect(bind.spec.containers[0].securityContext.capabilities).toEqual(ALL_DROPPED);
    expectAllowed(await validated(bind, 'bind'));
    const admin = structuredClone(bind);
    admin.spec.containers[0].securityContext.capabilities.add = ['NET_BIND_SERVICE', 'SYS_ADMIN'];
    const denied = await validated(admin, 'bind');
    expect([denied.allowed, denied.status?.message]).toEqual([false, expect.stringMatching(/capabilities\.add \["SYS_ADMIN"\] beyond those granted \["NET_BIND_SERVICE"\]/)]);
  });

  it('what ct k8s render writes passes both webhooks with its capabilities as they are', async () => {
    const facts = bundleFactsFromArchive(await openCtp(fx.bundles.v1Path));
    const { objects } = renderK8s({ facts, imageDigest: fx.digests.v1, bundleDigest: fx.bundles.v1, repository: `${fx.registry.host}/acme/hello`, namespace: 'shop' });
    const dep = objects.find((o) => o.kind === 'Deployment') as Obj;
    expect(dep.spec.template.spec.containers[0].securityContext.capabilities).toEqual(ALL_DROPPED);
    expectAllowed(await validated(dep));
    const out = await mutated(dep);
    expect(out.spec.template.spec.containers[0].securityContext).toEqual(dep.spec.template.spec.containers[0].securityContext);
  });
});

describe('SELinux level', () => {
  it('a pod- or container-level level (MCS categories) is admitted, as Pod Security\'s baseline admits it; a type, user or role beside it is not', async () => {
    const good = await mutated(pod([{ name: 'web', image: fx.refs.v1 }], { initContainers: [{ name: 'init', image: fx.refs.v1 }] }));
    const levelled = structuredClone(good);
    levelled.spec.securityContext = { seLinuxOptions: { level: 's0:c123,c456' } };
    levelled.spec.initContainers[0].securityContext.seLinuxOptions = { level: 's0:c1,c2' };
    expectAllowed(await validated(levelled));
    const withRole = structuredClone(levelled);
    withRole.spec.securityContext.seLinuxOptions.role = 'system_r';
    withRole.spec.initContainers[0].securityContext.seLinuxOptions.type = 'spc_t';
    const r = await validated(withRole);
    expect([r.allowed, r.status?.message]).toEqual([false, expect.stringMatching(/^\[SECURITY_CONTEXT_WEAKER\] initContainers\[0\] "init": .*seLinuxOptions\.type "spc_t".*seLinuxOptions\.role "system_r".*; also \[SECURITY_CONTEXT_WEAKER\] containers\[0\] "web": .*seLinuxOptions\.role "system_r"/)]);
  });
});

describe('validating webhook', () => {
  it('denies a tampered bundle with the verifier\'s code, and a policy denial with the policy\'s message', async () => {
    const t = await validated(pod([{ name: 'web', image: fx.refs.tampered }]));
    expect(t.allowed).toBe(false);
    expect(t.status.code).toBe(403);
    expect(t.status.message).toMatch(/^\[(SUBJECT_MISMATCH|DIGEST_MISMATCH|UNCOVERED_FILE)\]/);
    const ok = await mutated(pod([{ name: 'web', image: fx.refs.v1 }]), 'locked');
    const locked = await validated(ok, 'locked');
    expect(locked.allowed).toBe(false);
    expect(locked.status.message).toMatch(/^\[[A-Z_]+\] containers\[0\] "web" .*acme\/hello@sha256:[0-9a-f]{64}: locked\//);
  });

  it('answers warnings for a permissive policy\'s violations (allowed)', async () => {
    const ok = await mutated(pod([{ name: 'web', image: fx.refs.v1 }]), 'staging');
    const r = await validated(ok, 'staging');
    expect(r.allowed).toBe(true);
    expect(r.warnings.join('\n')).toMatch(/web: .*staging\/.*verified-container\.org\/v1\/review/);
  });

  it('denies a security context weaker than the bundle: privileged, extra capabilities, other profiles, host namespaces', async () => {
    const good = await mutated(pod([{ name: 'web', image: fx.refs.v1 }]));
    const cases: [string, (p: Obj) => void, RegExp][] = [
      ['privileged', (p) => (p.spec.containers[0].securityContext.privileged = true), /privileged: true/],
      ['capabilities', (p) => (p.spec.containers[0].securityContext.capabilities = { add: ['NET_BIND_SERVICE', 'SYS_ADMIN'] }), /capabilities\.add \["SYS_ADMIN"\] beyond those granted \["NET_BIND_SERVICE"\]/],
      ['seccomp', (p) => (p.spec.containers[0].securityContext.seccompProfile = { type: 'Unconfined' }), /seccompProfile must be Localhost operator\/cerro-torre-hello-/],
      ['apparmor', (p) => delete p.spec.containers[0].securityContext.appArmorProfile, /appArmorProfile must be Localhost/],
      ['hostPID', (p) => (p.spec.hostPID = true), /hostPID/],
      ['unsafe sysctl', (p) => (p.spec.securityContext = { sysctls: [{ name: 'net.ipv4.tcp_syncookies', value: '1' }, { name: 'kernel/msgmax', value: '1' }] }), /sysctls "kernel\/msgmax": outside the baseline's safe ones/],
      ['root user', (p) => (p.spec.containers[0].securityContext.runAsUser = 0), /runAsUser: 0 \(root\); the manifest runs as user "65534:65534"/],
      ['pod-level root', (p) => {
        const sc = p.spec.containers[0].securityContext;
        delete sc.runAsUser;
        delete sc.runAsNonRoot;
        p.spec.securityContext = { runAsUser: 0 };
      }, /runAsUser: 0 \(root\)/],
      ['image default user', (p) => {
        delete p.spec.containers[0].securityContext.runAsUser;
        delete p.spec.containers[0].securityContext.runAsNonRoot;
      }, /neither runAsNonRoot: true nor a non-zero runAsUser/],
      ['container runAsNonRoot false over the pod\'s true', (p) => {
        delete p.spec.containers[0].securityContext.runAsUser;
        p.spec.containers[0].securityContext.runAsNonRoot = false;
        p.spec.securityContext = { runAsNonRoot: true };
      }, /neither runAsNonRoot: true/],
      ['writable rootfs', (p) => (p.spec.containers[0].securityContext.readOnlyRootFilesystem = false), /readOnlyRootFilesystem must be true/],
      ['SELinux unconfined', (p) => (p.spec.securityContext = { seLinuxOptions: { type: 'spc_t' } }), /seLinuxOptions\.type "spc_t"/],
      ['privilege escalation', (p) => delete p.spec.containers[0].securityContext.allowPrivilegeEscalation, /allowPrivilegeEscalation must be false/],
      ['the node\'s files', (p) => {
        p.spec.volumes = [{ name: 'node', hostPath: { path: '/' } }];
        p.spec.containers[0].volumeMounts = [{ name: 'node', mountPath: '/host' }];
      }, /hostPath volume "node" \("\/"\) mounted/],
    ];
    for (const [, change, re] of cases) {
      const p = structuredClone(good);
      change(p);
      const r = await validated(p);
      expect(r.allowed).toBe(false);
      expect(r.status.message).toMatch(/^\[SECURITY_CONTEXT_WEAKER\]/);
      expect(r.status.message).toMatch(re);
    }
    // Pod-level fields count where the container sets none (Kubernetes' precedence), and another
    // non-root user is not weaker.
    const podLevel = structuredClone(good);
    delete podLevel.spec.containers[0].securityContext.runAsUser;
    delete podLevel.spec.containers[0].securityContext.runAsNonRoot;
    podLevel.spec.securityContext = { runAsNonRoot: true };
    expectAllowed(await validated(podLevel));
    const otherUser = structuredClone(good);
    otherUser.spec.containers[0].securityContext.runAsUser = 1000;
    otherUser.spec.securityContext = { runAsUser: 0 };
    expectAllowed(await validated(otherUser));
    // A sysctl of the baseline's safe list (namespaced to the pod), in either spelling, is no weaker.
    const safeSysctl = structuredClone(good);
    safeSysctl.spec.securityContext = { ...safeSysctl.spec.securityContext, sysctls: [{ name: 'net/ipv4/ip_unprivileged_port_start', value: '80' }] };
    expectAllowed(await validated(safeSysctl));
    // The manifest's own capability is allowed, in either spelling.
    const p = structuredClone(good);
    p.spec.containers[0].securityContext.capabilities = { drop: ['ALL'], add: ['CAP_NET_BIND_SERVICE'] };
    expectAllowed(await validated(p));
  });

  it('judges the digest it is given: a tag is refused, and a tag moved after mutation does not change the verdict', async () => {
    const byTag = await validated(pod([{ name: 'web', image: fx.tagRef, securityContext: wantSc(fx.digests.v1) }]));
    expect(byTag.allowed).toBe(false);
    expect(byTag.status.message).toMatch(/^\[IMAGE_NOT_PINNED\]/);
    const m1 = await mutated(pod([{ name: 'web', image: fx.tagRef }]));
    expect(m1.spec.containers[0].image).toBe(pinned(fx.digests.v1));
    await fx.moveTag('v2');
    try {
      const m2 = await mutated(pod([{ name: 'web', image: fx.tagRef }]));
      expect(m2.spec.containers[0].image).toBe(pinned(fx.digests.v2));
      // The object mutated before the move still carries v1 and v1's profiles: judged as v1.
      expectAllowed(await validated(m1));
      // v1's digest with v2's profiles is caught: the profiles must be the judged bundle's.
      const mixed = structuredClone(m1);
      mixed.spec.containers[0].securityContext = wantSc(fx.digests.v2);
      const r = await validated(mixed);
      expect(r.allowed).toBe(false);
      expect(r.status.message).toContain(`operator/${name(fx.digests.v1)}.json`);
    } finally {
      await fx.moveTag('v1');
    }
  });

  it('caches verdicts: judging the same images again fetches nothing', async () => {
    const ok = await mutated(pod([{ name: 'a', image: fx.refs.v1 }, { name: 'b', image: fx.refs.v2 }]));
    const before = adm.judge.stats.fetches;
    const hits = adm.judge.stats.verdictHits;
    for (let i = 0; i < 3; i++) expectAllowed(await validated(ok));
    expect(adm.judge.stats.fetches).toBe(before);
    expect(adm.judge.stats.verdictHits).toBeGreaterThanOrEqual(hits + 6);
  });

  it('dryRun: same answer, no decision recorded', async () => {
    const ok = await mutated(pod([{ name: 'web', image: fx.refs.v1 }]));
    const n = decisions.length;
    expectAllowed(await validated(ok, 'production', { dryRun: true }));
    expect(decisions.length).toBe(n);
    const r = await validated(ok, 'production', { uid: 'a2a2a2a2-0000-4000-8000-000000000001' });
    expect(r.allowed).toBe(true);
    expect(decisions.at(-1)).toMatchObject({ uid: 'a2a2a2a2-0000-4000-8000-000000000001', webhook: 'validate', environment: 'production', kind: '/v1/Pod', namespace: 'shop', allowed: true });
  });
});

// Before the fault tests below, which leave fetches hanging (each holds one of MAX_FETCHES slots).
describe('trust store and policies reloaded on change', () => {
  const until = async (cond: () => boolean, what: string) => {
    for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 50));
    if (!cond()) throw new Error(`timed out waiting for ${what}`);
  };
  const health = async () => {
    const agent = new (await import('undici')).Agent({ connect: { ca: readFileSync(fx.tls.cert), servername: '' } });
    try {
      const r = await (await import('undici')).request(`${adm.url}/healthz`, { dispatcher: agent });
      return (await r.body.json()) as Obj;
    } finally {
      await agent.close();
    }
  };

  it('a new trust store takes effect and drops the old verdicts; a broken or older one keeps the one in force', async () => {
    const original = readFileSync(fx.trustStorePath);
    const ok = await mutated(pod([{ name: 'web', image: fx.refs.v1 }]));
    expectAllowed(await validated(ok));
    const t = adm.reloads.trust;
    const loads = t.loads;
    const purged = adm.judge.stats.purged;
    try {
      // Version 2 revokes the signing key: the cached ALLOW must not be served any more.
      const v1 = await loadTrustStore(fx.trustStorePath);
      const v2 = revoke(bumpVersion(v1), 'keys', v1.keys.builders![0].id);
      await saveTrustStore(fx.trustStorePath, v2);
      await until(() => t.loads > loads, 'the trust store reload');
      const denied = await validated(ok);
      expect(denied.allowed).toBe(false);
      expect(adm.judge.stats.purged).toBeGreaterThan(purged);
      // Half-written (not JSON): logged and counted, version 2 stays in force.
      const errors = t.errors;
      await import('node:fs/promises').then((f) => f.writeFile(fx.trustStorePath, '{"version": 3, "keys": {'));
      await until(() => t.errors > errors, 'the failed reload');
      expect(t.loads).toBe(loads + 1);
      const shown = await health();
      expect(shown.trust).toMatchObject({ loads: loads + 1, lastError: { code: expect.stringMatching(/^[A-Z_]+$/), at: expect.any(String) } });
      // Anyone who reaches the port sees /healthz (probes carry no credentials): the code, never
      // the message, which names the file and what is wrong in it.
      expect(shown.trust.lastError.message).toBeUndefined();
      expect(JSON.stringify(shown)).not.toContain(fx.trustStorePath);
      expect(t.lastError?.message).toContain(fx.trustStorePath);
      expect((await validated(ok)).allowed).toBe(false);
      // The original (version 1) again: a rollback, refused.
      await import('node:fs/promises').then((f) => f.writeFile(fx.trustStorePath, original));
      // writeFile truncates, then writes: a reload may read the file in between (an error like the
      // half-written one above, the store in force kept); the write's own change event reads it whole.
      await until(() => t.lastError?.code === 'TRUST_STORE_ROLLBACK', 'the refused rollback');
      expect(t.errors).toBeGreaterThan(errors + 1);
      expect((await validated(ok)).allowed).toBe(false);
      // Version 3 without the revocation: allowed again.
      await saveTrustStore(fx.trustStorePath, bumpVersion(bumpVersion(v1)));
      await until(() => t.loads > loads + 1, 'the version 3 reload');
      expectAllowed(await validated(ok));
    } finally {
      // Back to the fixture's file (a rollback the reloader refuses: version 3, which trusts the same key, stays).
      await import('node:fs/promises').then((f) => f.writeFile(fx.trustStorePath, original));
    }
  });

  it('a changed policy set takes effect; a broken policy file keeps the previous set', async () => {
    const ok = await mutated(pod([{ name: 'web', image: fx.refs.v1 }]), 'locked');
    expect((await validated(ok, 'locked')).allowed).toBe(false);
    const p = adm.reloads.policies;
    const loads = p.loads;
    const file = `${fx.policiesDir}/locked.policy.yaml`;
    const before = readFileSync(file, 'utf8');
    const fs = await import('node:fs/promises');
    try {
      const keyId = JSON.parse(readFileSync(fx.trustStorePath, 'utf8')).keys.builders[0].id as string;
      const errors = p.errors;
      await fs.writeFile(file, 'apiVersion: cerro-torre.dev/v2\nkind: Policy\nname: [unclosed\n');
      await until(() => p.errors > errors, 'the failed policy reload');
      expect((await validated(ok, 'locked')).allowed).toBe(false);
      await fs.writeFile(`${file}.tmp`, before.replace(/keyId: sha256:[0-9a-f]{64}/, `keyId: ${keyId}`));
      await fs.rename(`${file}.tmp`, file);
      await until(() => p.loads > loads, 'the policy reload');
      expectAllowed(await validated(ok, 'locked'));
    } finally {
      await fs.writeFile(file, before);
    }
  });
});

describe('bad input and faults: a well-formed AdmissionReview denial, or an HTTP error', () => {
  it('unknown kinds are denied (fail closed), well-formed', async () => {
    const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 80 }] } };
    for (const hook of ['mutate', 'validate']) {
      const { status, json } = await client.post(`/${hook}/production`, reviewOf(svc));
      expect(status).toBe(200);
      expect(json.response.allowed).toBe(false);
      expect(json.response.status.message).toMatch(/^\[ADMISSION_UNSUPPORTED_KIND\]/);
    }
  });

  it('missing fields: denied with ADMISSION_INVALID when the uid is known, HTTP 400 otherwise', async () => {
    const review = reviewOf(pod([{ name: 'web', image: fx.refs.v1 }])) as Obj;
    delete review.request.object.spec;
    let r = await client.post('/validate/production', review);
    expect(r.json.response).toMatchObject({ allowed: false, status: { code: 400 } });
    expect(r.json.response.status.message).toMatch(/^\[ADMISSION_INVALID\] Pod: \.spec is missing/);
    const noImage = reviewOf(pod([{ name: 'web' }])) as Obj;
    r = await client.post('/mutate/production', noImage);
    expect(r.json.response.allowed).toBe(false);
    const noUid = reviewOf(pod([{ name: 'web', image: fx.refs.v1 }])) as Obj;
    delete noUid.request.uid;
    r = await client.post('/validate/production', noUid);
    expect(r.status).toBe(400);
    expect(r.json.response).toBeUndefined();
    expect((await client.post('/validate/production', null, { raw: '{"apiVersion": ' })).status).toBe(400);
    expect((await client.post('/validate/production', null, { raw: 'x'.repeat(4 * 1024 * 1024) }).catch(() => ({ status: 413 }))).status).toBe(413);
    expect((await client.post('/validate/production', reviewOf(pod([])), { contentType: 'text/plain' })).status).toBe(415);
    expect((await client.post('/validate/Prod..', reviewOf(pod([])))).status).toBe(404);
  });

  it('huge pods: 300 containers of one image are judged once; 100 distinct images are refused', async () => {
    const many = Array.from({ length: 300 }, (_, i) => ({ name: `c${i}`, image: fx.refs.v1 }));
    const out = await mutated(pod(many));
    expect(out.spec.containers).toHaveLength(300);
    expectAllowed(await validated(out));
    const distinct = Array.from({ length: 100 }, (_, i) => ({ name: `c${i}`, image: `${fx.registry.host}/acme/img${i}@sha256:${String(i).padStart(64, '0')}` }));
    const r = await validated(pod(distinct));
    expect(r.allowed).toBe(false);
    expect(r.status.message).toMatch(/^\[ADMISSION_TOO_LARGE\]/);
  });

  it('registry down: denied, saying why (503), nothing cached', async () => {
    const image = `127.0.0.1:${closedPort}/acme/hello@${fx.digests.v1}`;
    const fetches = adm.judge.stats.fetches;
    await validated(pod([{ name: 'web', image, securityContext: wantSc(fx.digests.v1) }]));
    const r = await validated(pod([{ name: 'web', image, securityContext: wantSc(fx.digests.v1) }]));
    expect(adm.judge.stats.fetches).toBe(fetches + 2);
    expect(r.allowed).toBe(false);
    expect(r.status.code).toBe(503);
    expect(r.status.message).toMatch(/^\[(NETWORK_ERROR|REGISTRY_ERROR)\]/);
    const m = await client.post('/mutate/production', reviewOf(pod([{ name: 'web', image: `127.0.0.1:${closedPort}/acme/hello:stable` }])));
    expect(m.json.response.allowed).toBe(false);
  });

  it('no writable scratch directory (an admission pod without a /tmp volume): IO_ERROR naming it, nothing cached; a fault of ours is ADMISSION_INTERNAL (500)', async () => {
    // A judge of its own: the file's judge has this digest cached already.
    const trust = trustMaterial(await loadTrustStore(fx.trustStorePath));
    const registry = { allowedRegistries: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host], noDockerConfig: true };
    const judge = new AdmissionJudge({ trust: () => trust, policies: () => adm.policies.current, registry, nodes: APPARMOR_NODES, scratchDir: '/nonexistent-ct-admission-scratch' });
    const v = await judge.judge(fx.refs.v1, 'production').catch((e: CtError) => e);
    expect(v).toBeInstanceOf(CtError);
    expect((v as CtError).code).toBe('IO_ERROR');
    expect((v as CtError).message).toMatch(/^scratch directory \/nonexistent-ct-admission-scratch: ENOENT/);
    expect(denyFor('u', v).response.status).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
    expect(judge.stats.fetches).toBe(1);
    // Not cached: the next request fetches again (the same failure here).
    await expect(judge.judge(fx.refs.v1, 'production')).rejects.toThrow(/scratch directory/);
    expect(judge.stats.fetches).toBe(2);
    // Only the scratch directory's own failure names it; a network errno is a network error.
    expect(failureOf(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', syscall: 'read' }))).toMatchObject({ code: 'NETWORK_ERROR', message: 'read ECONNRESET' });
    expect(failureOf(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', syscall: 'write' }))).toMatchObject({ code: 'IO_ERROR', message: 'ENOSPC: no space left on device, write' });
    const internal = failureOf(new TypeError(`x is not a function ${'y'.repeat(2000)}`));
    expect(internal.code).toBe('ADMISSION_INTERNAL');
    expect(internal.message.length).toBeLessThanOrEqual(512);
    expect(denyFor('u', new CtError('ADMISSION_INTERNAL', 'internal error: boom')).response.status).toMatchObject({ code: 500, reason: 'InternalError' });
  });

  it('past the API server\'s deadline (?timeout=): denied with ADMISSION_DEADLINE before it gives up', async () => {
    const image = `127.0.0.1:${hangingPort}/acme/hello@${fx.digests.v1}`;
    const t0 = Date.now();
    const { status, json } = await client.post('/validate/production', reviewOf(pod([{ name: 'web', image }])), { timeout: '2s' });
    const ms = Date.now() - t0;
    expect(status).toBe(200);
    expect(json.response).toMatchObject({ allowed: false, status: { code: 504 } });
    expect(json.response.status.message).toMatch(/^\[ADMISSION_DEADLINE\]/);
    expect(ms).toBeLessThan(2000);
  });
});

describe('load from many requests at once', () => {
  it('fetches at most MAX_FETCHES bundles at a time across requests; the rest wait (and are denied at their deadline)', async () => {
    const before = hangingSockets.size;
    const digest = (i: number) => `sha256:${i.toString(16).padStart(64, 'a')}`;
    const requests = Array.from({ length: 5 }, (_, r) => pod(Array.from({ length: 8 }, (_, i) => ({ name: `c${i}`, image: `127.0.0.1:${hangingPort}/acme/load${r}@${digest(r * 8 + i)}` }))));
    const answers = await Promise.all(requests.map((p) => client.post('/validate/production', reviewOf(p), { timeout: '2s' })));
    for (const a of answers) expect(a.json.response).toMatchObject({ allowed: false, status: { code: 504 } });
    await new Promise((r) => setTimeout(r, 300));
    // 40 distinct images asked for; the registry saw no more connections than the judge's bound.
    expect(hangingSockets.size - before).toBeGreaterThan(0);
    expect(hangingSockets.size - before).toBeLessThanOrEqual(MAX_FETCHES);
  });

  it('looks up a tag once however many requests ask for it at once', async () => {
    const before = hangingSockets.size;
    const answers = await Promise.all(Array.from({ length: 10 }, () => client.post('/mutate/production', reviewOf(pod([{ name: 'web', image: `127.0.0.1:${hangingPort}/acme/shared:1` }])), { timeout: '2s' })));
    for (const a of answers) expect(a.json.response).toMatchObject({ allowed: false, status: { code: 504 } });
    await new Promise((r) => setTimeout(r, 300));
    // One lookup's connection, not ten.
    expect(hangingSockets.size - before).toBe(1);
  });

  it('looks up at most MAX_PINS tags at a time across requests, one lookup per tag however many ask', async () => {
    const before = hangingSockets.size;
    // 5 requests of 8 tags each, 40 distinct tags, and each request's tags asked for twice (another request too).
    const requests = Array.from({ length: 5 }, (_, r) => pod(Array.from({ length: 8 }, (_, i) => ({ name: `c${i}`, image: `127.0.0.1:${hangingPort}/acme/pin${r}:t${i}` }))));
    const answers = await Promise.all([...requests, ...requests].map((p) => client.post('/mutate/production', reviewOf(p), { timeout: '2s' })));
    for (const a of answers) expect(a.json.response).toMatchObject({ allowed: false, status: { code: 504 } });
    await new Promise((r) => setTimeout(r, 300));
    expect(hangingSockets.size - before).toBeGreaterThan(0);
    expect(hangingSockets.size - before).toBeLessThanOrEqual(MAX_PINS);
  });
});

describe('adopting: audit-only environments and exempt images', () => {
  // A second webhook as a team starts with it: staging audited, a mesh sidecar and an agent
  // repository exempt; production enforced.
  let adopt: RunningAdmission;
  let c2: WebhookClient;
  const seen: AdmissionDecisionRecord[] = [];
  beforeAll(async () => {
    adopt = await startAdmission(
      {
        host: '127.0.0.1', port: 0, certFile: fx.tls.cert, keyFile: fx.tls.key, trustStore: fx.trustStorePath, policies: [fx.policiesDir],
        registry: { allowedRegistries: [fx.registry.host], allowedAddresses: ['127.0.0.1'], insecure: [fx.registry.host], noDockerConfig: true, timeoutMs: 30_000 },
        environments: ['production', 'staging'],
        auditEnvironments: ['staging'],
        exemptImages: ['docker.io/istio/proxyv2', `${fx.registry.host}/acme/agents/*`],
        nodesAppArmor: true,
        metricsPort: 0,
        onDecision: (r) => seen.push(r),
      },
      pino({ level: 'silent' }),
    );
    c2 = webhookClient(adopt.url, fx.tls.cert);
  });
  afterAll(async () => {
    await c2?.close();
    await adopt?.close();
  });

  it('audit: what would be denied is allowed, saying why in a warning and in the decision record; what passes is patched as usual', async () => {
    const review = reviewOf(pod([{ name: 'web', image: fx.refs.tampered }])) as Obj;
    const audited = (await c2.post('/validate/staging', review)).json.response;
    expect(audited).toMatchObject({ uid: review.request.uid, allowed: true });
    expect(audited.status).toBeUndefined();
    expect(audited.warnings[0]).toMatch(/^audit: would be denied: \[(SUBJECT_MISMATCH|DIGEST_MISMATCH|UNCOVERED_FILE)\] /);
    expect(seen.find((d) => d.uid === review.request.uid)).toMatchObject({ allowed: true, wouldDeny: expect.stringMatching(/^\[[A-Z_]+\]/), environment: 'staging' });
    // The same request where it is enforced.
    const enforced = (await c2.post('/validate/production', reviewOf(pod([{ name: 'web', image: fx.refs.tampered }])))).json.response;
    expect(enforced.allowed).toBe(false);
    // A tag with no bundle: the mutating webhook changes nothing and says so.
    const noBundle = (await c2.post('/mutate/staging', reviewOf(pod([{ name: 'x', image: `${fx.registry.host}/acme/nothing:1` }])))).json.response;
    expect(noBundle).toMatchObject({ allowed: true });
    expect(noBundle.patch).toBeUndefined();
    expect(noBundle.warnings[0]).toMatch(/^audit: would be denied: \[/);
    // An image that passes is pinned and given its profiles in audit mode too.
    const good = (await c2.post('/mutate/staging', reviewOf(pod([{ name: 'web', image: fx.tagRef }])))).json.response;
    expect(good.allowed).toBe(true);
    expect(good.warnings).toBeUndefined();
    expect(Buffer.from(good.patch, 'base64').toString()).toContain(fx.digests.v1);
    // Capabilities included (as the profiles, user and no_new_privs): what the patch takes is on record.
    const capsReview = reviewOf(pod([{ name: 'web', image: fx.refs.v1, securityContext: { capabilities: { add: ['NET_ADMIN', 'NET_BIND_SERVICE'] } } }, { name: 'quiet', image: fx.refs.v1, securityContext: { capabilities: { drop: ['ALL'] } } }])) as Obj;
    const caps = (await c2.post('/mutate/staging', capsReview)).json.response;
    const out = jsonpatch.applyPatch(structuredClone(capsReview.request.object), JSON.parse(Buffer.from(caps.patch, 'base64').toString('utf8')), true, false).newDocument as Obj;
    // staging has no capabilities rule: none granted.
    expect(out.spec.containers[0].securityContext.capabilities).toEqual({ drop: ['ALL'] });
    expect(seen.find((d) => d.uid === capsReview.request.uid)).toMatchObject({ allowed: true, patched: true, capabilitiesStripped: [{ container: 'containers[0] "web"', added: ['NET_ADMIN', 'NET_BIND_SERVICE'], runtimeDefaults: true }] });
    // Nothing taken, nothing recorded; nor where the pod was left as it came.
    const quietReview = reviewOf(pod([{ name: 'quiet', image: fx.refs.v1, securityContext: { capabilities: { drop: ['ALL'] } } }])) as Obj;
    await c2.post('/mutate/staging', quietReview);
    expect(seen.find((d) => d.uid === quietReview.request.uid)).toMatchObject({ patched: true });
    expect(seen.find((d) => d.uid === quietReview.request.uid)?.capabilitiesStripped).toBeUndefined();
    expect(seen.filter((d) => d.webhook === 'mutate' && d.wouldDeny).every((d) => d.capabilitiesStripped === undefined && !d.patched)).toBe(true);
    // A malformed request is no verdict to audit: still refused.
    const bad = reviewOf(pod([{ name: 'web', image: fx.refs.v1 }])) as Obj;
    delete bad.request.object.spec;
    expect((await c2.post('/validate/staging', bad)).json.response).toMatchObject({ allowed: false, status: { code: 400 } });
  });

  it('exempt images are neither pinned, patched nor judged; their neighbours are; a look-alike name is not exempt', async () => {
    const object = pod([
      { name: 'web', image: fx.tagRef },
      { name: 'istio-proxy', image: 'docker.io/istio/proxyv2:1.24.0' },
      { name: 'agent', image: `${fx.registry.host}/acme/agents/log-shipper:7` },
    ]);
    const m = (await c2.post('/mutate/production', reviewOf(object))).json.response;
    expect(m.allowed).toBe(true);
    const patch = JSON.parse(Buffer.from(m.patch, 'base64').toString('utf8')) as { path: string }[];
    expect(patch.length).toBeGreaterThan(0);
    expect(patch.every((op) => op.path.startsWith('/spec/containers/0/'))).toBe(true);
    const patched = jsonpatch.applyPatch(structuredClone(object), patch as never, true, false).newDocument as Obj;
    expect(patched.spec.containers[1]).toEqual((object as Obj).spec.containers[1]);
    const v = (await c2.post('/validate/production', reviewOf(patched))).json.response;
    expectAllowed(v);
    // Docker Hub is not allow-listed here: judging any of these would deny (never exempt by likeness).
    // A short name is not exempt: the runtime may look it up in other registries (CRI-O's search list).
    for (const image of ['istio/proxyv2:1.24.0', 'docker.io/istio/proxyv2-debug:1', 'docker.io/istio-evil/proxyv2:1', `${fx.registry.host}/acme/agents/deep/x:1`, `${fx.registry.host}/acme/agents:1`]) {
      const r = (await c2.post('/validate/production', reviewOf(pod([{ name: 'x', image }])))).json.response;
      expect({ image, allowed: r.allowed }).toEqual({ image, allowed: false });
    }
    // Nor a running pod's container whose image is changed to an exempt one.
    const verified = await mutated(pod([{ name: 'web', image: fx.refs.v1 }]));
    const swapped = structuredClone(verified);
    swapped.spec.containers[0].image = 'docker.io/istio/proxyv2:1.24.0';
    const sw = (await c2.post('/validate/production', reviewOf(swapped, { operation: 'UPDATE', oldObject: verified }))).json.response;
    expect(sw.allowed).toBe(false);
    // Nor is an ephemeral container (kubectl debug --image=<exempt> would reach a verified pod's processes).
    const running = await mutated(pod([{ name: 'web', image: fx.refs.v1 }]));
    const debug = structuredClone(running);
    debug.spec.ephemeralContainers = [{ name: 'debugger', image: 'docker.io/istio/proxyv2:1.24.0', targetContainerName: 'web' }];
    const d = (await c2.post('/validate/production', reviewOf(debug, { operation: 'UPDATE', subResource: 'ephemeralcontainers', oldObject: running }))).json.response;
    expect(d.allowed).toBe(false);
  });

  it('GET /metrics counts answers by webhook, environment, outcome and code, and HTTP refusals', async () => {
    expect((await c2.post('/validate/production', reviewOf(pod([])), { contentType: 'text/plain' })).status).toBe(415);
    const agent = new Agent({ connect: { ca: readFileSync(fx.tls.cert), servername: '' } });
    const res = await request(`${adopt.url}/metrics`, { dispatcher: agent });
    const text = await res.body.text();
    await agent.close();
    expect(res.statusCode).toBe(200);
    expect(String(res.headers['content-type'])).toMatch(/^text\/plain/);
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(value(/^ct_admission_requests_total\{webhook="validate",environment="staging",outcome="audited",code="(?:SUBJECT_MISMATCH|DIGEST_MISMATCH|UNCOVERED_FILE)"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^ct_admission_requests_total\{webhook="validate",environment="production",outcome="denied",code="(?:SUBJECT_MISMATCH|DIGEST_MISMATCH|UNCOVERED_FILE)"\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^ct_admission_requests_total\{webhook="validate",environment="production",outcome="allowed",code=""\} (\d+)$/m)).toBeGreaterThanOrEqual(1);
    expect(value(/^ct_admission_requests_total\{webhook="validate",environment="staging",outcome="denied",code="ADMISSION_INVALID"\} (\d+)$/m)).toBe(1);
    expect(value(/^ct_admission_refused_total\{status="415"\} (\d+)$/m)).toBe(1);
    expect(value(/^ct_admission_duration_seconds_count\{webhook="mutate"\} (\d+)$/m)).toBeGreaterThanOrEqual(3);
    // The plain listener for Prometheus (--metrics-port): the same registry, and nothing else.
    expect(adopt.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const plain = await fetch(`${adopt.metricsUrl}/metrics`);
    expect(plain.status).toBe(200);
    expect(await plain.text()).toMatch(/^ct_admission_refused_total\{status="415"\} 1$/m);
    expect((await fetch(`${adopt.metricsUrl}/validate/production`, { method: 'POST', body: '{}' })).status).toBe(404);
  });

  it('refuses to start on a pattern that would exempt a whole registry or an audit environment it does not serve', async () => {
    const base = { host: '127.0.0.1', port: 0, certFile: fx.tls.cert, keyFile: fx.tls.key, trustStore: fx.trustStorePath, policies: [fx.policiesDir], registry: { allowedRegistries: [], noDockerConfig: true } };
    const refused = [
      ['*/istio/proxyv2'], ['docker.io/**'], ['istio/proxyv2'], ['docker.io/istio/proxyv2:1.24'],
      // a wildcard account covers what anyone registers; patterns that could never match
      ['docker.io/*/*'], ['ghcr.io/*/**'], ['ghcr.io/*/proxyv2'], ['docker.io/istio*/proxyv2'],
      ['docker.io/nginx'], ['index.docker.io/istio/proxyv2'], ['registry.local:99999/x'], ['ghcr.io/acme/***'], ['ghcr.io/acme/a*b*c*d*e*f'],
    ];
    for (const exemptImages of refused) {
      await expect(startAdmission({ ...base, exemptImages }, pino({ level: 'silent' }))).rejects.toMatchObject({ code: 'USAGE' });
    }
    await expect(startAdmission({ ...base, environments: ['production'], auditEnvironments: ['prodution'] }, pino({ level: 'silent' }))).rejects.toMatchObject({ code: 'USAGE', message: expect.stringMatching(/prodution/) });
    await expect(startAdmission({ ...base, auditEnvironments: ['staging'] }, pino({ level: 'silent' }))).rejects.toMatchObject({ code: 'USAGE' });
  });
});

describe('TLS', () => {
  const fingerprint = () =>
    new Promise<string>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: Number(new URL(adm.url).port), rejectUnauthorized: false }, () => {
        resolve(s.getPeerX509Certificate()!.fingerprint256);
        s.end();
      });
      s.on('error', reject);
    });

  it('reloads a rotated certificate; a broken one leaves the previous in force', async () => {
    const before = await fingerprint();
    expect(before).toBe(new X509Certificate(readFileSync(fx.tls.cert)).fingerprint256);
    const loads = adm.loads();
    const next = makeCert(fx.dir, 'rotated');
    copyFileSync(next.key, fx.tls.key);
    copyFileSync(next.cert, fx.tls.cert);
    for (let i = 0; i < 100 && adm.loads() === loads; i++) await new Promise((r) => setTimeout(r, 50));
    expect(adm.loads()).toBeGreaterThan(loads);
    const after = await fingerprint();
    expect(after).toBe(new X509Certificate(readFileSync(next.cert)).fingerprint256);
    expect(after).not.toBe(before);
    const n = adm.loads();
    copyFileSync(next.cert, `${fx.tls.cert}.bak`);
    await import('node:fs/promises').then((f) => f.writeFile(fx.tls.cert, '-----BEGIN CERTIFICATE-----\nbroken\n'));
    await new Promise((r) => setTimeout(r, 400));
    expect(adm.loads()).toBe(n);
    expect(await fingerprint()).toBe(after);
    copyFileSync(`${fx.tls.cert}.bak`, fx.tls.cert);
  });
});
