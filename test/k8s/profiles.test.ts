/**
 * The "no weaker than the bundle" check for a bundle that carries no seccomp or AppArmor profile:
 * the mutating webhook sets RuntimeDefault, and the validating webhook must not accept a
 * Localhost profile of the pod's choosing instead (any file on the node, e.g. another app's
 * permissive profile or one that allows every syscall).
 */
import { describe, expect, it } from '@jest/globals';
import { desiredSecurityContext, weakerThanBundle, type BundleProfiles } from '../../src/k8s/profiles.js';
import type { ContainerRef } from '../../src/k8s/workloads.js';

const none: BundleProfiles = { capabilities: [], hostNetwork: false };
const container = (securityContext?: Record<string, unknown>): ContainerRef => ({ list: 'containers', index: 0, name: 'web', image: 'r.example/a@sha256:' + '0'.repeat(64), pointer: '/spec/containers/0', ...(securityContext ? { securityContext } : {}) });

describe('a bundle without profiles', () => {
  it('accepts what the mutating webhook sets (RuntimeDefault), and AppArmor left to the runtime default', () => {
    expect(weakerThanBundle(container(desiredSecurityContext(none)), {}, none)).toEqual([]);
    expect(weakerThanBundle(container({ seccompProfile: { type: 'RuntimeDefault' }, appArmorProfile: { type: 'RuntimeDefault' } }), {}, none)).toEqual([]);
  });

  it('refuses a Localhost seccomp or AppArmor profile the bundle does not carry, at container or pod level', () => {
    const anyFile = { type: 'Localhost', localhostProfile: 'operator/allow-everything.json' };
    expect(weakerThanBundle(container({ seccompProfile: anyFile }), {}, none)).toEqual([expect.stringMatching(/^seccompProfile must be RuntimeDefault \(the bundle carries no profile\), not Localhost operator\/allow-everything\.json/)]);
    expect(weakerThanBundle(container(), { securityContext: { seccompProfile: anyFile } }, none)).toHaveLength(1);
    const aa = { type: 'Localhost', localhostProfile: 'unconfined-ish' };
    expect(weakerThanBundle(container({ seccompProfile: { type: 'RuntimeDefault' }, appArmorProfile: aa }), {}, none)).toEqual([expect.stringMatching(/^appArmorProfile must be RuntimeDefault or unset \(the bundle carries no profile\), not Localhost unconfined-ish/)]);
    expect(weakerThanBundle(container({ seccompProfile: { type: 'RuntimeDefault' }, appArmorProfile: { type: 'Unconfined' } }), {}, none)).toHaveLength(1);
  });
});
