import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { evaluate } from '../../src/policy/evaluate.js';
import type { Mode, PolicyInput } from '../../src/policy/types.js';
import { att, ghSigner, input, KEY_A, KEY_B, KEY_POLICY, keySigner, setOf, SLSA, SPDX, v2 } from './helpers.js';

const set = setOf({
  'keys.policy.yaml': KEY_POLICY,
  'gh.policy.yaml': v2('gh', `mode: permissive\nmatch:\n  environments: [production, dev]\nsigners:\n  - issuer: https://token.actions.githubusercontent.com\n    subject: { regex: '^https://github\\.com/acme/[^/]+/\\.github/workflows/release\\.yml@refs/heads/main$' }\nruntime:\n  nonRoot: true\n  seccomp: { profile: runtime-default }\n`),
});

const signerArb = fc.constantFrom(keySigner(KEY_A), keySigner(KEY_B), ghSigner('acme/app'), ghSigner('acme/app', 'refs/heads/dev'), ghSigner('evil/app'));
const attArb = fc.record({
  type: fc.constantFrom(SLSA, SPDX, 'https://cyclonedx.org/bom'),
  signers: fc.array(signerArb, { minLength: 1, maxLength: 2 }),
  operators: fc.subarray(['log-a', 'log-b', 'log-c']),
}).map((a) => att(a.type, a.signers, { operators: a.operators }));
const inputArb = fc.record({
  attestations: fc.array(attArb, { maxLength: 4 }),
  env: fc.constantFrom('production', 'dev', 'qa'),
  user: fc.constantFrom('1000', 'root', undefined),
  seccomp: fc.boolean(),
  integrity: fc.boolean(),
}).map((r): PolicyInput => {
  const i = input({ attestations: r.attestations });
  i.host = { ...i.host, environment: r.env, seccomp: r.seccomp };
  i.manifest = { ...i.manifest, runtime: { ...i.manifest.runtime, user: r.user } };
  if (r.integrity) i.findings = [{ code: 'INVALID_SIGNATURE', message: 'x', integrity: true }];
  return i;
});

const codes = (i: PolicyInput, mode?: Mode) => {
  const d = evaluate(set, { ...i, mode });
  return [...d.violations, ...d.warnings].map((v) => `${v.policy}/${v.code}`).sort();
};

describe('engine properties (fast-check)', () => {
  it('modes relax requirements only: strict allow ⇒ permissive allow ⇒ audit allow; same findings in every mode', () => {
    fc.assert(
      fc.property(inputArb, (i) => {
        const s = evaluate(set, { ...i, mode: 'strict' });
        const p = evaluate(set, { ...i, mode: 'permissive' });
        const a = evaluate(set, { ...i, mode: 'audit' });
        if (s.allow) expect(p.allow).toBe(true);
        if (p.allow) expect(a.allow).toBe(true);
        expect(codes(i, 'permissive')).toEqual(codes(i, 'strict'));
        expect(codes(i, 'audit')).toEqual(codes(i, 'strict'));
      }),
      { numRuns: 300, seed: 4 },
    );
  });

  it('an integrity finding denies in every mode; no applicable policy denies in every mode', () => {
    fc.assert(
      fc.property(inputArb, fc.constantFrom<Mode | undefined>('strict', 'permissive', 'audit', undefined), (i, mode) => {
        const d = evaluate(set, { ...i, mode });
        if (i.findings?.some((f) => f.integrity)) expect(d.allow).toBe(false);
        if (d.policies.length === 0) expect(d.violations.map((v) => v.code)).toContain('NO_POLICY');
        expect(evaluate(set, structuredClone({ ...i, mode }))).toEqual(d);
      }),
      { numRuns: 300, seed: 5 },
    );
  });
});
