/**
 * Kubernetes admission makes a pod run under its bundle's own seccomp profile instead of the
 * runtime's default: that profile may only narrow RuntimeDefault (src/k8s/seccomp-check.ts), as
 * on a host. A bundle shipping `{"defaultAction":"SCMP_ACT_ALLOW"}` would otherwise run its pods
 * with seccomp off.
 */
import { describe, expect, it } from '@jest/globals';
import { bundleSeccompProblem } from '../../src/k8s/seccomp-check.js';
import type { Decision } from '../../src/policy/types.js';
import { runtimeDefault } from '../../src/profiles/seccomp/index.js';
import { KEY_A, setOf, v2 } from '../policy/helpers.js';

const policy = (name: string, runtime: string) => v2(name, `match:\n  environments: [production]\nsigners:\n  - keyId: ${KEY_A}\n${runtime}`);
const decision = (policies: string[]): Decision => ({ allow: true, mode: 'strict', violations: [], warnings: [], policies, policyDigest: 'x' });
const withUnshare = () => {
  const p = runtimeDefault();
  p.syscalls = [...(p.syscalls ?? []), { names: ['unshare', 'setns'], action: 'SCMP_ACT_ALLOW' }];
  return p;
};

describe('a bundle profile in Kubernetes admission', () => {
  const set = setOf({
    'plain.policy.yaml': policy('plain', ''),
    'extras.policy.yaml': v2('extras', `match:\n  environments: [staging]\nsigners:\n  - keyId: ${KEY_A}\nruntime:\n  seccomp:\n    profile: confining\n    extraSyscalls: [unshare, setns]\n`),
  });

  it('refuses a profile that allows everything, whatever the policy says of seccomp', () => {
    const problem = bundleSeccompProblem({ security: { seccomp: { defaultAction: 'SCMP_ACT_ALLOW' } } }, set, decision(['plain']));
    expect(problem).toMatch(/does not confine.*DEFAULT_ACTION_ALLOWS/);
  });

  it('refuses syscalls RuntimeDefault denies unless a policy requiring seccomp lists them', () => {
    expect(bundleSeccompProblem({ security: { seccomp: withUnshare() } }, set, decision(['plain']))).toMatch(/OUTSIDE_RUNTIME_DEFAULT: .*unshare/);
    expect(bundleSeccompProblem({ security: { seccomp: withUnshare() } }, set, decision(['extras']))).toBeUndefined();
  });

  it('accepts RuntimeDefault itself and narrower profiles; no profile is no problem', () => {
    expect(bundleSeccompProblem({ security: { seccomp: runtimeDefault({ capabilities: ['CAP_NET_BIND_SERVICE'] }) } }, set, decision(['plain']))).toBeUndefined();
    const narrower = runtimeDefault();
    narrower.syscalls = (narrower.syscalls ?? []).map((r) => ({ ...r, names: r.names.filter((n) => n !== 'mkdir') }));
    expect(bundleSeccompProblem({ security: { seccomp: narrower } }, set, decision(['plain']))).toBeUndefined();
    expect(bundleSeccompProblem({ runtime: { capabilities: ['NET_BIND_SERVICE'] } }, set, decision(['plain']))).toBeUndefined();
  });
});
