import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCtp } from '../../src/bundle/read.js';
import { rewriteCtp } from '../../src/bundle/write.js';
import { evaluate } from '../../src/policy/evaluate.js';
import { evidenceFromCtp } from '../../src/policy/ctp-evidence.js';
import { makeKey, makeStore, MemLog, trustOf } from '../verify/fixtures.js';
import { signCtpInMemory, tempDir, writeUnsignedCtp } from '../verify/ctp-fixtures.js';
import { runCt } from '../support/cli.js';
import { setOf, v2 } from './helpers.js';

// A real signed .ctp (bundle + signing libraries), verified by src/verify/ctp, judged by the policies.
const signer = makeKey();
const logA = new MemLog('log-a', 'Operator A');
const logB = new MemLog('log-b', 'Operator B');
const store = makeStore({ signers: [{ key: signer }], logs: [logA, logB] });
let tmp: { dir: string; cleanup: () => Promise<void> };
let signed: string;
let policies: string;

const policy = (quorum: number) =>
  v2(
    'prod',
    `match:\n  environments: [production]\nsigners:\n  - keyId: ${signer.keyId}\nattestations:\n  - predicateType: https://slsa.dev/provenance/v1\n  - predicateType: https://spdx.dev/Document\nlogQuorum: ${quorum}\nruntime:\n  seccomp: { profile: confining }\n  nonRoot: true\n`,
  );

beforeAll(async () => {
  tmp = await tempDir('ct-policy-ctp-');
  const unsigned = join(tmp.dir, 'unsigned.ctp');
  await writeUnsignedCtp(unsigned);
  signed = join(tmp.dir, 'signed.ctp');
  await signCtpInMemory(unsigned, signed, signer, [logA, logB]);
  policies = join(tmp.dir, 'policies');
  await mkdir(policies);
  await writeFile(join(policies, 'prod.policy.yaml'), policy(2));
  await writeFile(join(tmp.dir, 'trust-store.json'), JSON.stringify(store));
});
afterAll(() => tmp.cleanup());

describe('explain a .ctp verified on the spot', () => {
  it('evidenceFromCtp hands over what was proven; the policy allows it', async () => {
    const { evidence, findings } = await evidenceFromCtp(signed, trustOf(store));
    expect(findings).toEqual([]);
    expect(evidence.attestations.map((a) => a.logOperators)).toEqual([['Operator A', 'Operator B'], ['Operator A', 'Operator B']]);
    expect(Object.keys(evidence.coveredFiles ?? {})).toContain('security/seccomp.json');
    const set = setOf({ 'p.policy.yaml': policy(2) });
    const d = evaluate(set, { evidence, findings, manifest: { runtime: { user: '1000' }, security: { seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [] } } }, host: { environment: 'production', seccomp: true } });
    expect(d.allow).toBe(true);
  });

  it('ct policy explain signed.ctp --trust-store: allowed with quorum 2, denied (exit 4) with quorum 3', async () => {
    const args = ['policy', 'explain', signed, '--trust-store', join(tmp.dir, 'trust-store.json'), '--policies', policies, '--environment', 'production', '--format', 'json'];
    const hostFile = join(tmp.dir, 'host.json');
    await writeFile(hostFile, JSON.stringify({ environment: 'production', seccomp: true }));
    const ok = await runCt([...args, '--host', hostFile]);
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ allow: true, policies: ['prod'] });

    const strict = join(tmp.dir, 'strict');
    await mkdir(strict);
    await writeFile(join(strict, 'prod.policy.yaml'), policy(3));
    const denied = await runCt(['policy', 'explain', signed, '--trust-store', join(tmp.dir, 'trust-store.json'), '--policies', strict, '--host', hostFile, '--format', 'json']);
    expect(denied.code).toBe(4);
    expect(JSON.parse(denied.stdout).violations.map((v: { code: string }) => v.code)).toEqual(['INSUFFICIENT_LOG_COVERAGE', 'INSUFFICIENT_LOG_COVERAGE']);
  });

  it('without a host, says how to give one; ct host facts prints this machine\'s in the form --host reads', async () => {
    const none = await runCt(['policy', 'explain', signed, '--trust-store', join(tmp.dir, 'trust-store.json'), '--policies', policies]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^error\[USAGE\]: which host would run it\? --host FILE gives its facts \(ct host facts --environment ENV > host.json/);
    const facts = await runCt(['host', 'facts', '--environment', 'production']);
    expect(facts.code).toBe(0);
    const parsed = JSON.parse(facts.stdout) as { environment: string; seccomp: boolean; arch: string };
    expect(parsed).toMatchObject({ environment: 'production', seccomp: expect.any(Boolean), arch: ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? process.arch });
    const hostFile = join(tmp.dir, 'this-host.json');
    await writeFile(hostFile, facts.stdout);
    const ok = await runCt(['policy', 'explain', signed, '--trust-store', join(tmp.dir, 'trust-store.json'), '--policies', policies, '--host', hostFile, '--format', 'json']);
    expect([ok.code, ok.stderr]).toEqual([0, '']);
    expect(JSON.parse(ok.stdout)).toMatchObject({ allow: true });
  });

  it('a swapped security/seccomp.json is an integrity failure: denied in audit mode too, with the verifier code', async () => {
    const a = await openCtp(signed);
    const swapped = join(tmp.dir, 'swapped.ctp');
    await rewriteCtp(signed, swapped, { add: { 'security/seccomp.json': Buffer.from(JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW' })) } });
    expect(a.has('security/seccomp.json')).toBe(true);
    const r = await runCt(['policy', 'explain', swapped, '--trust-store', join(tmp.dir, 'trust-store.json'), '--policies', policies, '--environment', 'production', '--mode', 'audit', '--format', 'json']);
    const d = JSON.parse(r.stdout);
    expect(d.allow).toBe(false);
    expect(d.violations[0]).toMatchObject({ policy: '(verifier)', integrity: true });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBe(4);
  });
});
