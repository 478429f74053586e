import { describe, expect, it } from '@jest/globals';
import { evaluate } from '../../src/policy/evaluate.js';
import { VIOLATION_CODES } from '../../src/policy/codes.js';
import type { PolicyInput } from '../../src/policy/types.js';
import { att, ghSigner, GH_ISSUER, input, KEY_A, KEY_B, KEY_C, KEY_POLICY, keySigner, setOf, SLSA, SPDX, v2 } from './helpers.js';

const CONFINING = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'write', 'exit_group'], action: 'SCMP_ACT_ALLOW' }] };
const APPARMOR = 'profile app flags=(attach_disconnected) {\n  /usr/bin/app rix,\n  /data/** rw,\n}\n';

const RUNTIME_POLICY = v2(
  'runtime',
  `match:
  environments: [production]
signers:
  - keyId: ${KEY_A}
attestations:
  - predicateType: ${SLSA}
    conditions:
      - path: runDetails.builder.id
        equals: https://builder.example/v1
logQuorum: 2
requireVerifiedIn: [staging]
thresholds:
  - name: release-approvers
    k: 2
    signers:
      - keyId: ${KEY_A}
      - keyId: ${KEY_B}
      - keyId: ${KEY_C}
runtime:
  seccomp: { profile: confining }
  apparmor: { required: true }
  monitoring: { required: true }
  selinux: { required: true }
  capabilities: { allowed: [NET_BIND_SERVICE] }
  nonRoot: true
  readOnlyRootfs: true
  resources: { memory: 256M, cpus: 1, pids: 200 }
`,
);

/** Passes RUNTIME_POLICY; each case below changes one thing. */
function good(): PolicyInput {
  const provenance = { runDetails: { builder: { id: 'https://builder.example/v1' } } };
  const i = input({
    attestations: [att(SLSA, [keySigner(KEY_A), keySigner(KEY_B)], { predicate: provenance, subjects: ['manifest.toml', 'security/seccomp.json', 'security/apparmor', 'security/monitor.yaml', 'security/selinux/policy.cil'] })],
    manifest: { name: 'app', runtime: { user: 'app', read_only_rootfs: true, capabilities: ['CAP_NET_BIND_SERVICE'] }, security: { seccomp: CONFINING, apparmor: APPARMOR, monitor: true, selinux: '(block ct_app (blockinherit ct_container))\n' } },
    verifiedIn: ['staging'],
  });
  i.host.selinux = { present: true, enforcing: true };
  return i;
}

type Mutate = (i: PolicyInput) => void;
const CASES: [string, Mutate][] = [
  ['NO_POLICY', (i) => void (i.host.environment = 'qa')],
  ['SIGNER_NOT_ALLOWED', (i) => void (i.evidence.attestations[0].signers = [keySigner(KEY_B), keySigner(KEY_C)])],
  ['MISSING_ATTESTATION', (i) => void (i.evidence.attestations[0].predicateType = SPDX)],
  ['PREDICATE_CONDITION_FAILED', (i) => void (i.evidence.attestations[0].predicate = { runDetails: { builder: { id: 'https://evil.example' } } })],
  ['INSUFFICIENT_LOG_COVERAGE', (i) => void (i.evidence.attestations[0].logOperators = ['log-a'])],
  ['THRESHOLD_NOT_MET', (i) => void (i.evidence.attestations[0].signers = [keySigner(KEY_A)])],
  ['UNCOVERED_FILE', (i) => {
    // Signed by the policy's signer (so only the runtime rules' own need is unmet): no monitor.yaml covered.
    i.evidence.coveredFiles = { 'manifest.toml': 'sha256:x', 'security/seccomp.json': 'sha256:y', 'security/apparmor': 'sha256:z' };
    for (const a of i.evidence.attestations) a.subjects = Object.entries(i.evidence.coveredFiles).map(([name, d]) => ({ name, digest: { sha256: d.slice(7) } }));
  }],
  ['SECCOMP_REQUIRED', (i) => void delete i.manifest.security!.seccomp],
  ['SECCOMP_NOT_CONFINING', (i) => void (i.manifest.security!.seccomp = { ...CONFINING, defaultAction: 'SCMP_ACT_LOG' })],
  ['SECCOMP_NOTIFY', (i) => void (i.manifest.security!.seccomp = { ...CONFINING, listenerPath: '/run/agent.sock' })],
  ['SECCOMP_SPEC_ALLOW', (i) => void (i.manifest.security!.seccomp = { ...CONFINING, flags: ['SECCOMP_FILTER_FLAG_SPEC_ALLOW'] })],
  ['SECCOMP_SYSCALL_NOT_ALLOWED', (i) => void (i.manifest.security!.seccomp = { ...CONFINING, syscalls: [{ names: ['read', 'init_module'], action: 'SCMP_ACT_LOG' }] })],
  ['HOST_SECCOMP_UNAVAILABLE', (i) => void (i.host.seccomp = false)],
  ['APPARMOR_REQUIRED', (i) => void delete i.manifest.security!.apparmor],
  ['APPARMOR_UNCONFINED', (i) => void (i.manifest.security!.apparmor = 'profile app {\n  /usr/bin/** Ux,\n}\n')],
  ['HOST_APPARMOR_NOT_ENFORCING', (i) => void (i.host.apparmor = { present: false, enforcing: false })],
  ['MONITORING_REQUIRED', (i) => void (i.manifest.security!.monitor = false)],
  ['SELINUX_REQUIRED', (i) => void delete i.manifest.security!.selinux],
  ['HOST_SELINUX_UNAVAILABLE', (i) => void (i.host.selinux = { present: false, enforcing: false })],
  ['HOST_EBPF_UNAVAILABLE', (i) => void (i.host.ebpf = false)],
  ['CAPABILITY_NOT_ALLOWED', (i) => void (i.manifest.runtime!.capabilities = ['NET_BIND_SERVICE', 'sys_ptrace'])],
  ['RUNS_AS_ROOT', (i) => void (i.manifest.runtime!.user = '0:0')],
  ['ROOTFS_WRITABLE', (i) => void delete i.manifest.runtime!.read_only_rootfs],
  ['PRIVILEGED', (i) => void (i.manifest.runtime!.privileged = true)],
  ['NOT_VERIFIED_IN', (i) => void (i.verifiedIn = ['qa'])],
  ['RESOURCE_LIMIT_EXCEEDED', (i) => void (i.manifest.runtime!.resources = { memory: 512 * 1024 * 1024, cpus: 1, pids: 100 })],
];

describe('policy engine: violation codes', () => {
  const set = setOf({ 'runtime.policy.yaml': RUNTIME_POLICY });

  it('the baseline input passes every rule', () => {
    const d = evaluate(set, good());
    expect(d).toMatchObject({ allow: true, violations: [], warnings: [], policies: ['runtime'], mode: 'strict' });
  });

  it.each(CASES)('%s: changing one thing gives exactly that code', (code, mutate) => {
    const i = good();
    mutate(i);
    const d = evaluate(set, i);
    expect(d.allow).toBe(false);
    expect(d.violations.map((v) => v.code)).toEqual([code]);
    const v = d.violations[0];
    expect(v.policy).toBe(code === 'NO_POLICY' ? '(engine)' : 'runtime');
    if (code !== 'NO_POLICY') expect(v.at?.file).toBe('runtime.policy.yaml');
  });

  it('covers every documented violation code', () => {
    expect(CASES.map(([c]) => c).sort()).toEqual(Object.keys(VIOLATION_CODES).sort());
  });

  it('names the limit a bundle asks too much of', () => {
    const i = good();
    i.manifest.runtime!.resources = { memory: 128 * 1024 * 1024, cpus: 4, pids: 200 };
    const d = evaluate(set, i);
    expect(d.violations.map((v) => [v.code, v.rule, v.evidence])).toEqual([['RESOURCE_LIMIT_EXCEEDED', 'runtime.resources.cpus', { resource: 'cpus', asked: 4, limit: 1 }]]);
    expect(d.violations[0].message).toContain("above this environment's limit of 1");
  });

  it('shows the certificate SAN in a keyless rejection', () => {
    const i = good();
    i.evidence.attestations[0].signers = [ghSigner('evil-acme/app-x')];
    const v = evaluate(set, i).violations.find((x) => x.code === 'SIGNER_NOT_ALLOWED')!;
    expect(v.message).toContain('https://github.com/evil-acme/app-x/.github/workflows/release.yml@refs/heads/main');
    expect(v.evidence.signers).toEqual([expect.objectContaining({ subject: 'https://github.com/evil-acme/app-x/.github/workflows/release.yml@refs/heads/main', issuer: GH_ISSUER })]);
  });

  it('is deterministic: same input, same decision; file order does not matter', () => {
    const other = v2('audit-all', `mode: audit\nmatch:\n  all: true\nsigners:\n  - keyId: ${KEY_C}\n`);
    const a = setOf({ 'runtime.policy.yaml': RUNTIME_POLICY, 'z.policy.yaml': other });
    const b = setOf({ 'z.policy.yaml': other, 'runtime.policy.yaml': RUNTIME_POLICY });
    const i = good();
    i.host.ebpf = false;
    expect(evaluate(a, i)).toEqual(evaluate(b, i));
    expect(evaluate(a, i)).toEqual(evaluate(a, structuredClone(i)));
    expect(a.digest).toBe(b.digest);
  });
});

describe('policy engine: matching on verified facts only', () => {
  const byName = v2('by-name', `match:\n  names: [shop]\nsigners:\n  - keyId: ${KEY_A}\n`);

  it('a declared bundle name matches only when an allowed signer signed manifest.toml', () => {
    const set = setOf({ 'n.policy.yaml': byName });
    const signed = input({ attestations: [att(SLSA, [keySigner(KEY_A)])], manifest: { name: 'shop' } });
    expect(evaluate(set, signed)).toMatchObject({ allow: true, policies: ['by-name'] });
    // Same name, but the only signer is one the policy does not accept: the name counts for nothing.
    const unsigned = input({ attestations: [att(SLSA, [keySigner(KEY_B)])], manifest: { name: 'shop' } });
    expect(evaluate(set, unsigned).violations.map((v) => v.code)).toEqual(['NO_POLICY']);
    // Signed by the right key, but manifest.toml is not among the attestation's subjects.
    const uncovered = input({ attestations: [att(SLSA, [keySigner(KEY_A)], { subjects: [] })], manifest: { name: 'shop' } });
    expect(evaluate(set, uncovered).violations.map((v) => v.code)).toEqual(['NO_POLICY']);
  });

  it('registries match the reference the server fetched, never one the bundle names', () => {
    const set = setOf({ 'r.policy.yaml': v2('reg', `match:\n  registries: ['registry.example.com/acme/**']\nsigners:\n  - keyId: ${KEY_A}\n`) });
    const fetched = input({ attestations: [att(SLSA, [keySigner(KEY_A)])] });
    fetched.evidence.fetchedReference = 'registry.example.com/acme/app@sha256:abc';
    expect(evaluate(set, fetched).allow).toBe(true);
    const local = input({ attestations: [att(SLSA, [keySigner(KEY_A)])], manifest: { name: 'registry.example.com/acme/app' } });
    expect(evaluate(set, local).violations.map((v) => v.code)).toEqual(['NO_POLICY']);
  });

  it('source repositories come from provenance signed by a signer the policy accepts', () => {
    const policy = v2('src', `match:\n  sourceRepositories: ['https://github.com/acme/*']\nsigners:\n  - issuer: ${GH_ISSUER}\n    subject: { regex: '^https://github\\.com/acme/[^/]+/\\.github/workflows/release\\.yml@refs/heads/main$' }\n`);
    const set = setOf({ 's.policy.yaml': policy });
    const prov = { buildDefinition: { resolvedDependencies: [{ uri: 'git+https://github.com/acme/app@refs/heads/main' }] } };
    expect(evaluate(set, input({ attestations: [att(SLSA, [ghSigner('acme/app')], { predicate: prov })] })).allow).toBe(true);
    // The same provenance claim from a trusted-but-unaccepted key does not put the bundle in scope.
    expect(evaluate(set, input({ attestations: [att(SLSA, [keySigner(KEY_B)], { predicate: prov })] })).violations.map((v) => v.code)).toEqual(['NO_POLICY']);
  });
});

describe('policy engine: modes, expiry, several policies', () => {
  it('only expired policies match → NO_POLICY, naming them', () => {
    const set = setOf({ 'k.policy.yaml': KEY_POLICY.replace('match:', 'expires: "2026-01-01T00:00:00Z"\nmatch:') });
    const d = evaluate(set, input());
    expect(d.violations.map((v) => v.code)).toEqual(['NO_POLICY']);
    expect(d.violations[0].evidence.expired).toEqual(['keys']);
    expect(evaluate(set, input({ now: Date.parse('2025-12-31T00:00:00Z') })).allow).toBe(true);
  });

  it('audit mode records violations without blocking; integrity failures still deny', () => {
    const set = setOf({ 'k.policy.yaml': KEY_POLICY.replace('match:', 'mode: audit\nmatch:') });
    const weak = input({ attestations: [att(SLSA, [keySigner(KEY_A)], { operators: ['one'] })] });
    const d = evaluate(set, weak);
    expect(d).toMatchObject({ allow: true, mode: 'audit' });
    expect(d.warnings.map((v) => [v.code, v.mode])).toEqual([['INSUFFICIENT_LOG_COVERAGE', 'audit'], ['MISSING_ATTESTATION', 'audit']]);
    const tampered = evaluate(set, { ...weak, findings: [{ code: 'SUBJECT_MISMATCH', message: 'x', integrity: true }] });
    expect(tampered.allow).toBe(false);
    expect(tampered.violations.map((v) => v.code)).toEqual(['SUBJECT_MISMATCH']);
  });

  it('non-integrity verifier findings follow the mode', () => {
    const finding = { code: 'UNKNOWN_KEY', message: 'a signature by an unknown key was ignored', integrity: false };
    expect(evaluate(setOf({ 'k.policy.yaml': KEY_POLICY }), input({ findings: [finding] })).violations.map((v) => v.code)).toEqual(['UNKNOWN_KEY']);
    const permissive = evaluate(setOf({ 'k.policy.yaml': KEY_POLICY.replace('match:', 'mode: permissive\nmatch:') }), input({ findings: [finding] }));
    expect(permissive.allow).toBe(true);
    expect(permissive.warnings.map((v) => v.code)).toEqual(['UNKNOWN_KEY']);
  });

  it('every matching policy applies and a strict denial wins over a permissive one', () => {
    const lax = v2('lax', `mode: permissive\nmatch:\n  environments: [production]\nsigners:\n  - keyId: ${KEY_B}\n`);
    const set = setOf({ 'k.policy.yaml': KEY_POLICY, 'l.policy.yaml': lax });
    const d = evaluate(set, input());
    expect(d.policies).toEqual(['keys', 'lax']);
    expect(d.allow).toBe(true);
    expect(d.warnings.map((v) => [v.policy, v.code])).toEqual([['lax', 'SIGNER_NOT_ALLOWED']]);
    const bad = evaluate(set, input({ attestations: [att(SLSA, [keySigner(KEY_B)])] }));
    expect(bad.allow).toBe(false);
    expect(bad.violations.map((v) => [v.policy, v.code])).toEqual([['keys', 'SIGNER_NOT_ALLOWED']]);
  });

  it('the operator may override the mode', () => {
    const set = setOf({ 'k.policy.yaml': KEY_POLICY });
    const weak = input({ attestations: [att(SLSA, [keySigner(KEY_A)])], mode: 'permissive' });
    expect(evaluate(set, weak)).toMatchObject({ allow: true, mode: 'permissive' });
  });

  it('seccomp runtime-default accepts a bundle without a profile on a host that enforces seccomp', () => {
    const p = v2('rd', `match:\n  all: true\nsigners:\n  - keyId: ${KEY_A}\nruntime:\n  seccomp: { profile: runtime-default }\n`);
    const set = setOf({ 'rd.policy.yaml': p });
    expect(evaluate(set, input()).allow).toBe(true);
    const noHost = input();
    noHost.host.seccomp = false;
    expect(evaluate(set, noHost).violations.map((v) => v.code)).toEqual(['HOST_SECCOMP_UNAVAILABLE']);
  });

  it('seccomp extras listed by the policy are accepted; capability-gated RuntimeDefault syscalls follow the capabilities', () => {
    const p = (extra: string) => v2('sc', `match:\n  all: true\nsigners:\n  - keyId: ${KEY_A}\nruntime:\n  seccomp: { profile: confining${extra} }\n`);
    const withMount = input({ manifest: { runtime: {}, security: { seccomp: { defaultAction: 'SCMP_ACT_KILL_PROCESS', syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ALLOW' }] } } } });
    expect(evaluate(setOf({ 'a.policy.yaml': p('') }), withMount).violations.map((v) => v.code)).toEqual(['SECCOMP_SYSCALL_NOT_ALLOWED']);
    expect(evaluate(setOf({ 'a.policy.yaml': p(', extraSyscalls: [mount]') }), withMount).allow).toBe(true);
    // RuntimeDefault itself allows mount to a container granted CAP_SYS_ADMIN.
    withMount.manifest.runtime!.capabilities = ['CAP_SYS_ADMIN'];
    expect(evaluate(setOf({ 'a.policy.yaml': p('') }), withMount).allow).toBe(true);
  });
});

describe('AppArmor judgement', () => {
  it("accepts Docker's docker-default profile and refuses unconfined execution and transitions", async () => {
    const { readFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { repoRoot } = await import('../support/cli.js');
    const { judgeAppArmor } = await import('../../src/policy/apparmor.js');
    const golden = await readFile(join(repoRoot, '..', 'shared', 'reference', 'moby-profiles', 'apparmor-docker-default.golden'), 'utf8');
    expect(judgeAppArmor(golden)).toEqual([]);
    const bad = ['  /opt/** ux,', '  /bin/sh pux,', '  /bin/sh PUx,', '  /usr/bin/tool Cux -> helper,', '  /bin/x px -> unconfined,', '  change_profile -> unconfined,', '  network inet tcp, change_profile -> unconfined,', '  audit change_profile -> "unconfined",', '  change_profile,', '  change_profile /bin/x,', '  change_profile -> **,', '  change_profile -> unconf*,', '  change_profile -> {foo,unconfined},', '  /bin/sh px -> @{T},', '  /bin/sh Px -> unconf*,'];
    for (const rule of bad) expect(judgeAppArmor(`profile a {\n${rule}\n}\n`).map((f) => f.line)).toEqual([2]);
    expect(judgeAppArmor('profile a flags=(complain) {\n}\n').map((f) => f.line)).toEqual([1]);
    // apparmor_parser reads a rule across lines, and a variable may name unconfined for a transition.
    expect(judgeAppArmor('profile a {\n  /bin/x px ->\n    unconfined,\n}\n').map((f) => [f.line, f.reason])).toEqual([[2, 'transition to unconfined']]);
    expect(judgeAppArmor('@{T}=unconfined\nprofile a {\n  /bin/x r,\n}\n').map((f) => f.line)).toEqual([1]);
    const fine = ['  /bin/sh Px,', '  /bin/** rCx -> child,', '  /tmp/ux/** rw,', '  signal (receive) peer=unconfined,', '  # /opt/** ux,', '  deny change_profile -> **,', '  audit deny change_profile,', '  link /tmp/a -> /tmp/b*,', '  /bin/x px -> unconfined_helper,'];
    for (const rule of fine) expect(judgeAppArmor(`profile a {\n${rule}\n}\n`)).toEqual([]);
  });

  // apparmor_parser lowercases mode letters, reads several rules on a line, and takes `#` for a
  // comment only after whitespace or `,`; backslashes escape quotes, spaces and `#`. Each of these
  // compiles to ux (test/profiles/apparmor.test.ts runs the same spellings through the parser).
  it('judges ux the way apparmor_parser reads it: any case, any rule of a line, no false comments', async () => {
    const { judgeAppArmor } = await import('../../src/policy/apparmor.js');
    const bad = [
      '  /usr/bin/sh UX,',
      '  /usr/bin/sh PUX,',
      '  "/usr/bin/sh"Ux,',
      '  network inet tcp, /bin/sh ux,',
      '  /tmp/a#b r, /usr/bin/sh ux,',
      '  "/tmp/a\\"#" r, /bin/sh ux,',
      '  /tmp/a\\ #b r, /bin/sh ux,',
    ];
    for (const rule of bad) expect([rule, judgeAppArmor(`profile a {\n${rule}\n}\n`).length > 0]).toEqual([rule, true]);
    for (const rule of ['  /tmp/e r, # UX in a comment', '  /tmp/e r,# ux in a comment']) expect(judgeAppArmor(`profile a {\n${rule}\n}\n`)).toEqual([]);
  });
});

describe('seccomp judgement', () => {
  it('RuntimeDefault itself confines; the same profile with SCMP_ACT_ALLOW as default does not', async () => {
    const { runtimeDefault } = await import('../../src/profiles/seccomp/runtime-default.js');
    const { judgeSeccomp } = await import('../../src/policy/seccomp.js');
    const opts = { allowNotify: false, allowSpecAllow: false, extraSyscalls: new Set<string>(), arch: 'amd64' };
    const rd = runtimeDefault({ arch: 'amd64', kernel: '6.1.0' });
    expect(judgeSeccomp(rd, opts)).toEqual([]);
    expect(judgeSeccomp({ ...rd, defaultAction: 'SCMP_ACT_ALLOW' }, opts).map((f) => f.code)).toEqual(['SECCOMP_NOT_CONFINING']);
    expect(judgeSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: 'all' }, opts).map((f) => f.code)).toEqual(['SECCOMP_NOT_CONFINING']);
    expect(judgeSeccomp(null, opts).map((f) => f.code)).toEqual(['SECCOMP_NOT_CONFINING']);
  });
});
