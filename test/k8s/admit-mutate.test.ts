/**
 * The mutating patch meets the API server's own validation: what it sets must be admissible next
 * to what the container asks, or the pod is refused with the API server's error, not ours.
 */
import { describe, expect, it } from '@jest/globals';
import jsonpatch from 'fast-json-patch';
import { mutate, validate, type ImageJudge } from '../../src/k8s/admit.js';
import type { AdmissionRequest } from '../../src/k8s/admission-review.js';
import type { BundleProfiles } from '../../src/k8s/profiles.js';
import { parseExemptions } from '../../src/k8s/exempt.js';

const digest = `sha256:${'a'.repeat(64)}`;
const image = `r.example/acme/fuse@${digest}`;
const judgeOf = (profiles: BundleProfiles): ImageJudge => ({
  pin: (i) => Promise.resolve(i),
  judge: async (p) => ({ reference: p, imageDigest: digest, bundleDigest: digest, allow: true, warnings: [], profiles }),
});
const request = (securityContext: Record<string, unknown>, object?: Record<string, unknown>): AdmissionRequest =>
  ({ uid: 'u', kind: { group: '', version: 'v1', kind: 'Pod' }, resource: { group: '', version: 'v1', resource: 'pods' }, operation: 'CREATE', dryRun: false, object: object ?? { spec: { containers: [{ name: 'fuse', image, securityContext }] } } }) as AdmissionRequest;

/** What Kubernetes' ValidateSecurityContext refuses of a container's security context. */
function apiServerRefuses(sc: Record<string, unknown>): boolean {
  if (sc.allowPrivilegeEscalation !== false) return false;
  const add = ((sc.capabilities as { add?: unknown[] } | undefined)?.add ?? []) as unknown[];
  return sc.privileged === true || add.includes('CAP_SYS_ADMIN');
}

async function patched(sc: Record<string, unknown>, profiles: BundleProfiles, warnings?: string[]): Promise<Record<string, unknown>> {
  const req = request(sc);
  const out = await mutate(req, { judge: judgeOf(profiles), environment: 'production' });
  expect(out.response.allowed).toBe(true);
  expect(out.response.warnings).toEqual(warnings);
  const ops = JSON.parse(Buffer.from(out.response.patch ?? '', 'base64').toString('utf8')) as jsonpatch.Operation[];
  const obj = jsonpatch.applyPatch(structuredClone(req.object), ops).newDocument as { spec: { containers: { securityContext: Record<string, unknown> }[] } };
  return obj.spec.containers[0].securityContext;
}

describe('the mutating patch and the API server', () => {
  it('keeps no_new_privs for a manifest granting CAP_SYS_ADMIN (as hosts do) and respells it SYS_ADMIN, which the API server admits', async () => {
    const profiles: BundleProfiles = { capabilities: ['SYS_ADMIN'], hostNetwork: false };
    // NET_ADMIN, which the manifest does not grant, is left out (and said), as are the runtime's defaults.
    const sc = await patched({ capabilities: { add: ['NET_ADMIN', 'CAP_SYS_ADMIN'] } }, profiles, ['fuse: capabilities.add ["NET_ADMIN"] left out: granted ["SYS_ADMIN"] (the manifest\'s that the policies allow)']);
    expect(sc).toMatchObject({ allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['SYS_ADMIN'] } });
    expect(apiServerRefuses(sc)).toBe(false);
    // And the validating webhook takes SYS_ADMIN with no_new_privs.
    const v = await validate(request({}, { spec: { containers: [{ name: 'fuse', image, securityContext: sc }] } }), { judge: judgeOf(profiles), environment: 'production' });
    expect(v.response).toEqual(expect.objectContaining({ allowed: true }));
  });

  it('leaves a privileged container\'s escalation alone, so that the validating webhook denies it as weaker, not the API server as invalid', async () => {
    const profiles: BundleProfiles = { capabilities: [], hostNetwork: false };
    const sc = await patched({ privileged: true }, profiles);
    expect(apiServerRefuses(sc)).toBe(false);
    const v = await validate(request({}, { spec: { containers: [{ name: 'fuse', image, securityContext: sc }] } }), { judge: judgeOf(profiles), environment: 'production' });
    expect(v.response).toMatchObject({ allowed: false, status: { message: expect.stringMatching(/^\[SECURITY_CONTEXT_WEAKER\] .*privileged: true/) } });
  });
});

describe('the node\'s ports and processes', () => {
  const profiles: BundleProfiles = { capabilities: [], hostNetwork: false };
  const sc = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } };
  const judged = (spec: Record<string, unknown>, p = profiles) => validate(request({}, { spec }), { judge: judgeOf(p), environment: 'production' });

  it('refuses a hostPort (the node\'s SSH or kubelet port taken over), in any container list; a containerPort alone passes', async () => {
    expect((await judged({ containers: [{ name: 'web', image, securityContext: sc, ports: [{ containerPort: 8080 }] }] })).response.allowed).toBe(true);
    const web = await judged({ containers: [{ name: 'web', image, securityContext: sc, ports: [{ containerPort: 8080 }, { containerPort: 22, hostPort: 22 }] }] });
    expect(web.response).toMatchObject({ allowed: false, status: { code: 403, message: expect.stringMatching(/^\[SECURITY_CONTEXT_WEAKER\] containers\[0\] "web": .*hostPort 22: a port of the node's addresses/) } });
    const init = await judged({ initContainers: [{ name: 'init', image, securityContext: sc, ports: [{ containerPort: 10250, hostPort: 10250 }] }], containers: [{ name: 'web', image, securityContext: sc }] });
    expect(init.response.status?.message).toMatch(/^\[SECURITY_CONTEXT_WEAKER\] initContainers\[0\] "init": .*hostPort 10250/);
  });

  it('refuses a hostPort put on an exempt sidecar: the pod shares one network, so it forwards the node\'s port to the judged app', async () => {
    const exempt = parseExemptions(['docker.io/istio/proxyv2']);
    const out = await validate(request({}, { spec: { containers: [
      { name: 'web', image, securityContext: sc, ports: [{ containerPort: 8080 }] },
      { name: 'side', image: 'docker.io/istio/proxyv2:1.24', ports: [{ containerPort: 8080, hostPort: 22 }] },
    ] } }), { judge: judgeOf(profiles), environment: 'production', exempt });
    expect(out.response).toMatchObject({ allowed: false, status: { message: expect.stringMatching(/^\[SECURITY_CONTEXT_WEAKER\] containers\[0\] "web": .*hostPort 22/) } });
  });

  it('a manifest asking for the host network binds the node\'s ports itself: its hostPort (the containerPort, as the API server makes it) passes', async () => {
    const host: BundleProfiles = { capabilities: [], hostNetwork: true };
    const out = await judged({ hostNetwork: true, containers: [{ name: 'web', image, securityContext: sc, ports: [{ containerPort: 8080, hostPort: 8080 }] }] }, host);
    expect(out.response.allowed).toBe(true);
  });

  it('refuses a Windows host process, set on the container or on the pod', async () => {
    const own = await judged({ containers: [{ name: 'web', image, securityContext: { ...sc, windowsOptions: { hostProcess: true } } }] });
    expect(own.response.status?.message).toMatch(/^\[SECURITY_CONTEXT_WEAKER\] .*windowsOptions\.hostProcess: true/);
    const ofPod = await judged({ securityContext: { windowsOptions: { hostProcess: true } }, containers: [{ name: 'web', image, securityContext: sc }] });
    expect(ofPod.response.status?.message).toMatch(/windowsOptions\.hostProcess: true/);
    const undone = await judged({ securityContext: { windowsOptions: { hostProcess: true } }, containers: [{ name: 'web', image, securityContext: { ...sc, windowsOptions: { hostProcess: false } } }] });
    expect(undone.response.allowed).toBe(true);
  });
});
