import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate } from '../../src/policy/evaluate.js';
import { compileRegex } from '../../src/policy/string-match.js';
import { att, input, KEY_A, KEY_B, keySigner, load, setOf, SLSA, SPDX, v2, KEY_POLICY } from './helpers.js';
import { repoRoot } from '../support/cli.js';

const MVP = join(repoRoot, '..', 'shared', 'reference', 'samples', 'vcs-mvp', 'valid-mvp-hello', 'policy.json');

function v1(over: Record<string, unknown> = {}): string {
  return JSON.stringify({ version: 1, requiredPredicates: [SLSA, SPDX], allowedSigners: [KEY_A], logQuorum: 1, ...over }, null, 2);
}

describe('Svalinn v1 policies (accepted verbatim)', () => {
  it("loads the upstream MVP producer's policy.json unchanged", () => {
    const text = readFileSync(MVP, 'utf8');
    const r = load({ 'mvp/policy.json': text });
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const p = r.set!.policies[0];
    expect(p.format).toBe('v1');
    expect(p.mode).toBe('strict');
    expect(p.logQuorum).toBe(1);
    expect(p.match.all).toBe(true);
  });

  // Upstream's gate (svalinn src/policy/PolicyEngine.res): required predicates present, every
  // attestation's signer in allowedSigners, enough logged attestations. Same decisions where sound.
  it.each([
    ['all predicates from an allowed signer', [att(SLSA, [keySigner(KEY_A)], { operators: ['l1'] }), att(SPDX, [keySigner(KEY_A)], { operators: ['l1'] })], true, []],
    ['a predicate missing', [att(SLSA, [keySigner(KEY_A)], { operators: ['l1'] })], false, ['MISSING_ATTESTATION']],
    ['an attestation from a signer outside allowedSigners', [att(SLSA, [keySigner(KEY_A)], { operators: ['l1'] }), att(SPDX, [keySigner(KEY_A)], { operators: ['l1'] }), att(SLSA, [keySigner(KEY_B)], { operators: ['l1'] })], false, ['SIGNER_NOT_ALLOWED']],
    ['no log entry at all', [att(SLSA, [keySigner(KEY_A)], { operators: [] }), att(SPDX, [keySigner(KEY_A)], { operators: [] })], false, ['INSUFFICIENT_LOG_COVERAGE', 'INSUFFICIENT_LOG_COVERAGE']],
  ])('strict: %s', (_name, attestations, allow, codes) => {
    const d = evaluate(setOf({ 'policy.json': v1() }), input({ attestations }));
    expect(d.allow).toBe(allow);
    expect(d.violations.map((v) => v.code)).toEqual(codes);
  });

  it('permissive mode: requirement failures become warnings, as upstream', () => {
    const d = evaluate(setOf({ 'policy.json': v1({ mode: 'permissive' }) }), input({ attestations: [att(SLSA, [keySigner(KEY_A)], { operators: ['l1'] })] }));
    expect(d.allow).toBe(true);
    expect(d.warnings.map((v) => v.code)).toEqual(['MISSING_ATTESTATION']);
    expect(d.mode).toBe('permissive');
  });

  it('differs from upstream: permissive never lets an integrity failure (bad log proof) through', () => {
    // Upstream allows every bundle in permissive mode and never checks proofs.
    const d = evaluate(setOf({ 'policy.json': v1({ mode: 'permissive' }) }), input({ findings: [{ code: 'LOG_PROOF_INVALID', message: 'bad proof', integrity: true }] }));
    expect(d.allow).toBe(false);
    expect(d.violations.map((v) => [v.code, v.integrity])).toEqual([['LOG_PROOF_INVALID', true]]);
  });

  it('differs from upstream: logQuorum counts distinct log operators per attestation, not logged attestations', () => {
    // Two attestations each in one log: upstream counts 2 ≥ 2 and allows.
    const attestations = [att(SLSA, [keySigner(KEY_A)], { operators: ['l1'] }), att(SPDX, [keySigner(KEY_A)], { operators: ['l1'] })];
    const d = evaluate(setOf({ 'policy.json': v1({ logQuorum: 2 }) }), input({ attestations }));
    expect(d.allow).toBe(false);
    expect(d.violations.map((v) => v.code)).toEqual(['INSUFFICIENT_LOG_COVERAGE', 'INSUFFICIENT_LOG_COVERAGE']);
  });

  it.each([
    ['audit is not a v1 mode', { mode: 'audit' }, '/mode'],
    ['empty allowedSigners', { allowedSigners: [] }, '/allowedSigners'],
    ['signer not a key id', { allowedSigners: ['alice'] }, '/allowedSigners/0'],
    ['logQuorum 0', { logQuorum: 0 }, '/logQuorum'],
    ['unknown field', { extra: true }, 'extra'],
  ])('rejects %s with its location', (_n, over, where) => {
    const r = load({ 'p.json': v1(over) });
    expect(r.set).toBeUndefined();
    const e = r.issues.find((i) => i.severity === 'error')!;
    expect(e.kind).toBe('schema');
    expect(e.file).toBe('p.json');
    expect(e.line).toBeGreaterThan(1);
    expect(e.message).toContain(where);
  });
});

describe('v2 policies', () => {
  it('YAML and the same document in JSON compile to the same rules', () => {
    const yamlSet = setOf({ 'a.policy.yaml': KEY_POLICY });
    const json = JSON.stringify({ apiVersion: 'cerro-torre.dev/v2', kind: 'Policy', name: 'keys', match: { environments: ['production'] }, signers: [{ keyId: KEY_A }], attestations: [{ predicateType: SLSA }, { predicateType: SPDX }], logQuorum: 2 });
    const jsonSet = setOf({ 'a.policy.json': json });
    const i = input();
    expect(evaluate(jsonSet, i)).toEqual({ ...evaluate(yamlSet, i), policyDigest: jsonSet.digest });
    expect(evaluate(yamlSet, i).allow).toBe(true);
  });

  const bad: [string, string, number, number, string][] = [
    ['invalid YAML', `apiVersion: cerro-torre.dev/v2\nkind: Policy\nname: x\nmatch: {environments: [prod]\nsigners: []\n`, 5, 0, 'yaml'],
    ['an unknown field (points at the key)', v2('x', `match:\n  environments: [prod]\nsigners:\n  - keyId: ${KEY_A}\n    colour: blue\n`), 8, 5, 'schema'],
    ['a wrong type', v2('x', `match:\n  environments: [prod]\nsigners:\n  - keyId: ${KEY_A}\nlogQuorum: two\n`), 8, 12, 'schema'],
    ['a duplicate key', v2('x', `match:\n  environments: [prod]\n  environments: [dev]\nsigners:\n  - keyId: ${KEY_A}\n`), 6, 3, 'yaml'],
    ['a regex RE2 cannot run (lookahead)', v2('x', `match:\n  environments: [prod]\nsigners:\n  - issuer: https://issuer.example\n    subject: { regex: '^(?=a)b$' }\n`), 8, 14, 'regex-invalid'],
    ['a regex that does not compile', v2('x', `match:\n  environments: [prod]\nsigners:\n  - issuer: https://issuer.example\n    subject: { regex: '^(abc$' }\n`), 8, 14, 'regex-invalid'],
    ['a signer mixing kinds', v2('x', `match:\n  environments: [prod]\nsigners:\n  - keyId: ${KEY_A}\n    role: builders\n`), 7, 5, 'schema'],
    ['a threshold that can never be met', v2('x', `match:\n  environments: [prod]\nsigners:\n  - keyId: ${KEY_A}\nthresholds:\n  - name: release\n    k: 2\n    signers:\n      - keyId: ${KEY_A}\n`), 9, 5, 'unreachable'],
  ];
  it.each(bad)('rejects %s at file:line:column', (_n, text, line, column, kind) => {
    const r = load({ 'repo/bad.policy.yaml': text });
    expect(r.set).toBeUndefined();
    const e = r.issues.find((i) => i.severity === 'error')!;
    expect({ file: e.file, line: e.line, kind: e.kind }).toEqual({ file: 'repo/bad.policy.yaml', line, kind });
    if (kind !== 'yaml') expect(e.column).toBe(column);
  });

  it('reports every schema error at once, each with its own line', () => {
    const r = load({ 'b.policy.yaml': v2('x', `mode: enforce\nmatch:\n  environments: [prod]\nsigners:\n  - keyId: nope\n`) });
    const lines = r.issues.filter((i) => i.severity === 'error').map((i) => i.line).sort();
    expect(lines).toEqual([4, 8]);
  });

  it('anchors an unanchored regex and says so (lint warning), so acme/app cannot match evil-acme/app-x', () => {
    const text = v2('x', `match:\n  environments: [prod]\nsigners:\n  - issuer: ${'https://token.actions.githubusercontent.com'}\n    subject: { regex: 'https://github.com/acme/app/.*' }\n`);
    const r = load({ 'u.policy.yaml': text });
    expect(r.issues.map((i) => [i.kind, i.line])).toEqual([['unanchored-pattern', 8]]);
    const spec = r.set!.policies[0].signers[0];
    expect(spec.subject!.test('https://github.com/acme/app/.github/workflows/x.yml@refs/heads/main')).toBe(true);
    expect(spec.subject!.test('https://github.com/evil-acme/app/x')).toBe(false);
    expect(spec.subject!.test(`https://github.com/acme/app/${'x'.repeat(5000)}`)).toBe(false); // bounded input
  });

  it('matches an anchored pattern whole even with a top-level alternative: ^a|b$ is not "anything ending in b"', () => {
    const subject = String.raw`^https://github\.com/acme/shop/\.github/workflows/release\.yml@refs/heads/main|refs/tags/v[0-9.]+$`;
    const r = load({ 'a.policy.yaml': v2('x', `match:\n  environments: [prod]\nsigners:\n  - issuer: https://token.actions.githubusercontent.com\n    subject: { regex: '${subject}' }\n`) });
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const spec = r.set!.policies[0].signers[0];
    expect(spec.subject!.test('https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main')).toBe(true);
    expect(spec.subject!.test('refs/tags/v1.2')).toBe(true);
    expect(spec.subject!.test('https://github.com/evil/x/.github/workflows/a.yml@refs/tags/v1')).toBe(false);
    expect(spec.subject!.test('https://github.com/acme/shop/.github/workflows/release.yml@refs/heads/main-evil')).toBe(false);
    // A pattern cannot close a group of ours: unbalanced parentheses do not compile.
    for (const bad of ['^a)|(b$', String.raw`^https://github\.com/good/)|(?:.*$`, 'good)|(.*']) {
      const c = compileRegex(bad);
      expect(c.matcher).toBeUndefined();
      expect(c.error?.message).toContain(bad);
    }
  });

  // A proposal previewed through the API is anyone's: patterns that take a backtracking engine
  // exponential time (or time to the power of their stars) compile, and answer at once. Run by
  // V8's engine, the load below did not end (the overlap check tests each policy's literals
  // against the other's patterns), nor did the tests after it.
  it('compiles and runs patterns that backtrack catastrophically, in time linear in the input', () => {
    const env = (name: string, e: string) => v2(name, `match:\n  environments: ['${e}']\nsigners:\n  - issuer: https://issuer.example\n    subject: { regex: '${name === 'x1' ? '(a|a)*' : '.*a.*a.*a.*a.*a.*b'}' }\n`);
    const r = load({ 'x1.policy.yaml': env('x1', 'a'.repeat(1000)), 'x2.policy.yaml': env('x2', '*a*a*a*a*a*b') });
    expect(r.issues.filter((i) => i.severity === 'error')).toEqual([]);
    const [x1, x2] = r.set!.policies;
    const hostile = 'a'.repeat(4000);
    expect([x1.signers[0].subject!.test(hostile), x1.signers[0].subject!.test(`${hostile}b`)]).toEqual([true, false]);
    expect([x2.signers[0].subject!.test(`${hostile}b`), x2.signers[0].subject!.test(hostile)]).toEqual([true, false]);
    expect([x2.match.environments![0].test(`${hostile}b`), x2.match.environments![0].test(hostile), x2.match.environments![0].test(`aaaaa/b`)]).toEqual([true, false, false]);
  });

  it('keeps JavaScript\'s answers where RE2 would differ: a line break . did not match never matches; ? is one character', () => {
    const text = v2('x', `match:\n  environments: ['prod-?']\nsigners:\n  - issuer: https://issuer.example\n    subject: { regex: '^refs/heads/release-.*$' }\n`);
    const p = load({ 'r.policy.yaml': text }).set!.policies[0];
    const subject = p.signers[0].subject!;
    expect(['refs/heads/release-1', 'refs/heads/release-x\u2028y', 'refs/heads/release-x\ry'].map((v) => subject.test(v))).toEqual([true, false, false]);
    expect(['prod-1', 'prod-\u{1F600}', 'prod-12'].map((v) => p.match.environments![0].test(v))).toEqual([true, true, false]);
  });

  it('rejects policies that contradict each other, pointing at both', () => {
    const cond = (v: string) => `match:\n  environments: [prod]\nsigners:\n  - keyId: ${KEY_A}\nattestations:\n  - predicateType: ${SLSA}\n    conditions:\n      - path: runDetails.builder.id\n        equals: ${v}\n`;
    const r = load({ 'a.policy.yaml': v2('a', cond('https://builder.one')), 'b.policy.yaml': v2('b', cond('https://builder.two')) });
    expect(r.set).toBeUndefined();
    const e = r.issues.find((i) => i.kind === 'conflict')!;
    expect(e.file).toBe('b.policy.yaml');
    expect(e.line).toBe(11);
    expect(e.message).toContain('a.policy.yaml:11');
  });

  it('rejects two policies with the same name', () => {
    const r = load({ 'a.policy.yaml': KEY_POLICY, 'b.policy.yaml': KEY_POLICY });
    expect(r.set).toBeUndefined();
    expect(r.issues.map((i) => [i.file, i.kind])).toEqual([['b.policy.yaml', 'conflict']]);
  });

  it('does not call disjoint environments a conflict', () => {
    const cond = (env: string, v: string) => `match:\n  environments: [${env}]\nsigners:\n  - keyId: ${KEY_A}\nattestations:\n  - predicateType: ${SLSA}\n    conditions:\n      - path: runDetails.builder.id\n        equals: ${v}\n`;
    const r = load({ 'a.policy.yaml': v2('a', cond('prod', 'x')), 'b.policy.yaml': v2('b', cond('dev-*', 'y')) });
    expect(r.set?.policies.length).toBe(2);
  });
});
