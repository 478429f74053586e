import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot, runCt } from '../support/cli.js';
import { diffCommand, explainCommand, lintCommand, testCommand } from '../../src/cli/commands/policy.js';
import { runCommand, type Io } from '../../src/cli/io.js';
import { withSbom } from './helpers.js';
import { readDeployments } from '../../src/policy/diff.js';
import { MAX_JSON_DEPTH } from '../../src/core/json.js';
import type { CtError } from '../../src/core/errors.js';

/**
 * The command bodies in-process, with the exit code `ct` would return (runCommand maps errors the
 * same way): most cases use this; a few spawn the real binary to prove the wiring.
 */
async function inProcess(body: (io: Io) => Promise<number>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = { out: (t) => void (stdout += t.endsWith('\n') ? t : `${t}\n`), err: (t) => void (stderr += t.endsWith('\n') ? t : `${t}\n`) };
  const code = await runCommand(io, () => body(io));
  return { code, stdout, stderr };
}

const TEMPLATE = join(repoRoot, 'examples', 'policy-repo');
const DEPLOYMENTS = join(TEMPLATE, 'deployments.example.json');

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ct-policy-cli-'));
});
afterAll(() => rm(tmp, { recursive: true, force: true }));

async function copyTemplate(name: string): Promise<string> {
  const dir = join(tmp, name);
  await cp(TEMPLATE, dir, { recursive: true });
  return dir;
}

function lineOf(text: string, needle: string): number {
  return text.split('\n').findIndex((l) => l.includes(needle)) + 1;
}

describe('ct policy test', () => {
  it('passes on the starter repository, with --require-tests', async () => {
    const r = await runCt(['policy', 'test', 'examples/policy-repo', '--require-tests']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed, 0 error\(s\)$/m);
    expect(r.stdout).not.toMatch(/^FAIL/m);
  });

  it('passes on the default policies and writes JUnit', async () => {
    const out = join(tmp, 'junit.xml');
    const r = await inProcess((io) => testCommand(io, join(repoRoot, 'policies'), { requireTests: true, format: 'junit', output: out }));
    expect(r.code).toBe(0);
    const xml = await readFile(out, 'utf8');
    expect(xml).toContain('failures="0" errors="0"');
    expect((xml.match(/<testcase /g) ?? []).length).toBeGreaterThanOrEqual(20);
  });

  it('a deliberately broken policy fails with its file:line:column', async () => {
    const dir = await copyTemplate('broken');
    const file = join(dir, 'policies', 'production', 'production.policy.yaml');
    const text = (await readFile(file, 'utf8')).replace('logQuorum: 2', 'logQuorum: two');
    await writeFile(file, text);
    const r = await runCt(['policy', 'test', dir]);
    expect(r.code).toBe(10);
    expect(r.stdout).toContain(`ERROR ${file}:${lineOf(text, 'logQuorum: two')}:12: error [schema] /logQuorum`);
    const lint = await inProcess((io) => lintCommand(io, [dir], { format: 'json' }));
    expect(lint.code).toBe(10);
    const json = JSON.parse(lint.stdout);
    expect(json.issues).toEqual([expect.objectContaining({ file, line: lineOf(text, 'logQuorum: two'), kind: 'schema', severity: 'error' })]);
    // The summary counts what was read, not "0 policies".
    const plain = await inProcess((io) => lintCommand(io, [dir], {}));
    expect(plain.stdout).toMatch(/^[1-9]\d* policy file\(s\) read, none compiled, 1 error\(s\), 0 warning\(s\)\n$/);
  });

  it('a failing case exits 1 and names the case by file:line; JSON output carries the codes', async () => {
    const dir = await copyTemplate('failing');
    const suite = join(dir, 'policies', 'production', 'production.test.yaml');
    const text = (await readFile(suite, 'utf8')).replace('expect: { allow: false, violations: [RUNS_AS_ROOT] }', 'expect: { allow: true }');
    await writeFile(suite, text);
    const r = await inProcess((io) => testCommand(io, dir, {}));
    expect(r.code).toBe(1);
    const caseLine = lineOf(text, '- name: runs as root');
    expect(r.stdout).toContain(`FAIL ${suite}:${caseLine} runs as root`);
    const j = await inProcess((io) => testCommand(io, dir, { format: 'json' }));
    expect(j.code).toBe(1);
    const failed = JSON.parse(j.stdout).cases.filter((c: { passed: boolean }) => !c.passed);
    expect(failed).toEqual([expect.objectContaining({ name: 'runs as root', allow: false, violations: ['RUNS_AS_ROOT'] })]);
  });

  it('--require-tests fails when a policy has no case', async () => {
    const dir = await copyTemplate('untested');
    await rm(join(dir, 'policies', 'development', 'development.test.yaml'));
    const r = await inProcess((io) => testCommand(io, dir, { requireTests: true }));
    expect(r.code).toBe(10);
    expect(r.stdout).toContain('development.policy.yaml:3:1: error [untested]');
    expect((await inProcess((io) => testCommand(io, dir, {}))).code).toBe(0);
  });
});

describe('ct policy on a symlinked policies root', () => {
  // A pull request's checkout whose policies directory links to a directory of the CI machine.
  it('lint, test and diff refuse it (root-symlink) before reading a file under it', async () => {
    const SECRET = 'c2VjcmV0dG9rZW4=';
    const outside = join(tmp, 'runner-dir');
    const checkout = join(tmp, 'linked-checkout');
    await mkdir(outside);
    await mkdir(checkout);
    await writeFile(join(outside, 'policy.yaml'), `[http]\n\textraheader = AUTHORIZATION: basic ${SECRET}\n`);
    await symlink(outside, join(checkout, 'policies'));
    const lint = await inProcess((io) => lintCommand(io, [join(checkout, 'policies')], { format: 'json' }));
    expect(lint.code).toBe(10);
    expect((JSON.parse(lint.stdout) as { issues: { kind: string }[] }).issues.map((i) => i.kind)).toEqual(['root-symlink']);
    const test = await inProcess((io) => testCommand(io, join(checkout, 'policies'), { format: 'json' }));
    expect(test.code).toBe(10);
    expect((JSON.parse(test.stdout) as { errors: { kind: string }[] }).errors.map((i) => i.kind)).toEqual(['root-symlink']);
    const diff = await inProcess((io) => diffCommand(io, join(TEMPLATE, 'policies'), join(checkout, 'policies'), { against: DEPLOYMENTS }));
    expect(diff.code).not.toBe(0);
    expect(diff.stderr).toContain('POLICY_INVALID');
    expect(diff.stderr).toContain('root-symlink');
    for (const r of [lint, test, diff]) expect(r.stdout + r.stderr).not.toContain(SECRET);
  });
});

describe('ct policy explain', () => {
  let evidenceFile: string;
  beforeAll(async () => {
    const fixture = parse(await readFile(join(repoRoot, 'policies', 'production', 'fixtures', 'release.yaml'), 'utf8'));
    evidenceFile = join(tmp, 'input.json');
    await writeFile(evidenceFile, JSON.stringify(fixture));
  });

  it('allows the release fixture and records the decision', async () => {
    const audit = join(tmp, 'audit.jsonl');
    const r = await runCt(['policy', 'explain', '-', '--evidence', evidenceFile, '--policies', 'policies', '--format', 'json', '--audit-log', audit]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ allow: true, policies: ['production'], violations: [] });
    const rec = JSON.parse((await readFile(audit, 'utf8')).trim());
    expect(rec).toMatchObject({ decision: 'ALLOW', mode: 'strict', imageDigest: `sha256:${'1'.repeat(64)}` });
  });

  it('exits 4 when no policy covers the environment and prints why', async () => {
    const r = await inProcess((io) => explainCommand(io, '-', { evidence: evidenceFile, policies: [join(repoRoot, 'policies')], environment: 'staging' }));
    expect(r.code).toBe(4);
    expect(r.stdout).toMatch(/^decision: DENY/m);
    expect(r.stdout).toMatch(/^ {2}- NO_POLICY \[\(engine\) match\]/m);
  });

  it('an integrity failure keeps its own exit code (LOG_PROOF_INVALID → 2), even with --mode audit', async () => {
    const withFinding = join(tmp, 'tampered.json');
    const doc = JSON.parse(await readFile(evidenceFile, 'utf8'));
    doc.findings = [{ code: 'LOG_PROOF_INVALID', message: 'bad inclusion proof', integrity: true }];
    await writeFile(withFinding, JSON.stringify(doc));
    const r = await inProcess((io) => explainCommand(io, '-', { evidence: withFinding, policies: [join(repoRoot, 'policies')], mode: 'audit', format: 'json' }));
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).violations.map((v: { code: string }) => v.code)).toEqual(['LOG_PROOF_INVALID']);
  });

  it('reads the manifest and security files of an unpacked bundle', async () => {
    const bundle = join(tmp, 'bundle');
    await mkdir(join(bundle, 'security'), { recursive: true });
    const fixture = JSON.parse(await readFile(evidenceFile, 'utf8'));
    await writeFile(
      join(bundle, 'manifest.toml'),
      `name = "shop"\nversion = "1.4.0"\nimage_digest = "${fixture.evidence.imageDigest}"\n\n[metadata]\nbuild_timestamp = "2026-05-01T00:00:00Z"\nbuilder = "ci"\n\n[runtime]\nuser = "root"\nread_only_rootfs = true\n`,
    );
    await writeFile(join(bundle, 'security', 'seccomp.json'), JSON.stringify(fixture.manifest.security.seccomp));
    const r = await inProcess((io) => explainCommand(io, bundle, { evidence: evidenceFile, policies: [join(repoRoot, 'policies')], format: 'json' }));
    expect(r.code).toBe(4);
    expect(JSON.parse(r.stdout).violations.map((v: { code: string }) => v.code)).toEqual(['RUNS_AS_ROOT']);
  });
});

describe('ct policy diff', () => {
  async function tightened(): Promise<string> {
    const dir = await copyTemplate('tightened');
    const file = join(dir, 'policies', 'production', 'production.policy.yaml');
    // Only the billing repository's release workflow may sign for production now.
    const text = (await readFile(file, 'utf8')).replace('example-org/[A-Za-z0-9_.-]+/\\.github/workflows/[A-Za-z0-9_.-]+\\.ya?ml@', 'example-org/billing/\\.github/workflows/release\\.yml@');
    expect(text).toContain('example-org/billing/');
    await writeFile(file, text);
    return join(dir, 'policies');
  }

  it('prints the impact table for a change that tightens a signer rule', async () => {
    const head = await tightened();
    const r = await runCt(['policy', 'diff', 'examples/policy-repo/policies', head, '--against', DEPLOYMENTS]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('**1 would now be denied**');
    expect(r.stdout).toContain('| Deployment | App | Environment | Image | Before | After | Why (after) |');
    expect(r.stdout).toMatch(/^\| ⛔ prod-shop-1 \| shop \| production \| `sha256:111111111111` \| allowed \| denied \| `SIGNER_NOT_ALLOWED` \(production\) \|$/m);
    expect(r.stdout).not.toContain('dev-shop-7');
    expect(r.stdout).toContain('`production` (modified)');
    const failing = await inProcess((io) => diffCommand(io, join(TEMPLATE, 'policies'), head, { against: DEPLOYMENTS, failOnDeny: true }));
    expect(failing.code).toBe(4);

    // A real fleet's export is larger than a policy file may be: its evidence carries SBOMs.
    const large = join(tmp, 'deployments-large.json');
    await writeFile(large, withSbom(await readFile(DEPLOYMENTS, 'utf8'), 8000));
    expect((await stat(large)).size).toBeGreaterThan(4 * 1024 * 1024);
    const big = await inProcess((io) => diffCommand(io, join(TEMPLATE, 'policies'), head, { against: large }));
    expect([big.code, big.stderr]).toEqual([0, '']);
    expect(big.stdout).toMatch(/^\| ⛔ prod-shop-1 \| shop \| production \| `sha256:111111111111` \| allowed \| denied \| `SIGNER_NOT_ALLOWED` \(production\) \|$/m);
    // Its problems are still named by the field's path.
    const broken = JSON.parse(await readFile(large, 'utf8'));
    broken.deployments[1].evidence.attestations[1].signers = 'nobody';
    await writeFile(large, JSON.stringify(broken));
    const bad = await inProcess((io) => diffCommand(io, join(TEMPLATE, 'policies'), head, { against: large }));
    expect(bad.code).toBe(10);
    expect(bad.stderr).toContain('deployments.1.evidence.attestations.1.signers: must be a list');
    // Beyond the export's own bound (a sparse file: nothing is written, nothing read).
    const huge = join(tmp, 'deployments-huge.json');
    await truncate(await writeFile(huge, '').then(() => huge), 256 * 1024 * 1024 + 1);
    const refused = await inProcess((io) => diffCommand(io, join(TEMPLATE, 'policies'), head, { against: huge }));
    expect(refused.code).toBe(10);
    expect(refused.stderr).toMatch(/^error\[JSON_INVALID\].*deployments-huge\.json: larger than 268435456 bytes/);
  });

  it('reads a large export as the server writes it: predicates as deep as a statement may nest, a byte order mark; at most its bound of anything, the first problems only', async () => {
    const head = await tightened();
    const doc = JSON.parse(withSbom(await readFile(DEPLOYMENTS, 'utf8'), 8000));
    let deep: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH - 1; i++) deep = [deep];
    doc.deployments[0].evidence.attestations[1].predicate = { deep }; // the predicate is a statement's level 2
    const large = join(tmp, 'deployments-deep.json');
    await writeFile(large, `\uFEFF${JSON.stringify(doc)}`);
    const r = await inProcess((io) => diffCommand(io, join(TEMPLATE, 'policies'), head, { against: large }));
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain('**1 would now be denied**');
    // Under a MiB of characters but over it in bytes (600,000 'é'): read like any export under 256 MiB.
    const wide = join(tmp, 'deployments-wide.json');
    await writeFile(wide, JSON.stringify({ ...JSON.parse(await readFile(DEPLOYMENTS, 'utf8')), note: 'é'.repeat(600_000) }));
    const w = await inProcess((io) => diffCommand(io, join(TEMPLATE, 'policies'), head, { against: wide }));
    expect([w.code, w.stderr]).toEqual([0, '']);
    // A device that never ends, a file that grows: no more than the bound is read.
    await expect(readDeployments('/dev/zero', 1024 * 1024)).rejects.toMatchObject({ code: 'JSON_INVALID', message: '/dev/zero: larger than 1048576 bytes' });
    // Millions of broken attestations: their first problems, at once (every one of them ran out of memory).
    const broken = join(tmp, 'deployments-broken.json');
    await writeFile(broken, `{"deployments":[{"id":"x","environment":"e","evidence":{"imageDigest":"sha256:1","attestations":[${Array(2_000_000).fill('{}').join(',')}]},"hostFacts":{"environment":"e"}}]}`);
    const err = await readDeployments(broken).catch((e: unknown) => e as CtError);
    expect(err).toMatchObject({ code: 'JSON_INVALID', message: expect.stringContaining('deployments.0.evidence.attestations.0.predicateType: must be a string') });
    expect((err as CtError).details.issues).toHaveLength(20);
  });

  it('compares git revisions of a repository path', async () => {
    const repo = join(tmp, 'gitrepo');
    await cp(TEMPLATE, repo, { recursive: true });
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...args], { stdio: 'pipe' });
    git('init', '-q');
    git('add', '.');
    git('commit', '-q', '-m', 'base');
    const head = await tightened();
    await cp(join(head, 'production', 'production.policy.yaml'), join(repo, 'policies', 'production', 'production.policy.yaml'));
    git('commit', '-q', '-am', 'tighten');
    const r = await inProcess((io) => diffCommand(io, 'HEAD~1', 'HEAD', { repo, path: 'policies', against: DEPLOYMENTS, format: 'json' }));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.counts).toEqual({ 'now-denied': 1, 'now-allowed': 0, 'reasons-changed': 0, unchanged: 1 });
    expect(j.rows.find((x: { id: string }) => x.id === 'prod-shop-1').after.violations).toEqual(['SIGNER_NOT_ALLOWED']);
    const bad = await inProcess((io) => diffCommand(io, '--upload-pack=x', 'HEAD', { repo, against: DEPLOYMENTS }));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^error\[USAGE\]/);
  });
});
