import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPolicyTests, toJUnit } from '../../src/policy/suite.js';
import { parseSource } from '../../src/policy/source.js';
import { parseDeployments } from '../../src/policy/diff.js';
import { IMAGE, KEY_A, KEY_POLICY, SLSA, SPDX } from './helpers.js';

const fixture = (operators: string[]) =>
  JSON.stringify({
    now: '2026-06-01T00:00:00Z',
    host: { environment: 'production' },
    manifest: { name: 'app' },
    evidence: {
      imageDigest: IMAGE,
      attestations: [SLSA, SPDX].map((predicateType) => ({ predicateType, predicate: {}, signers: [{ kind: 'key', keyId: KEY_A }], logOperators: operators })),
    },
  }, null, 2);

describe('policy test suites', () => {
  let repo: string;
  let outside: string;
  beforeEach(async () => {
    repo = await mkdtemp(join(tmpdir(), 'ct-policy-suite-'));
    outside = await mkdtemp(join(tmpdir(), 'ct-policy-outside-'));
    await writeFile(join(repo, 'keys.policy.yaml'), KEY_POLICY);
    await mkdir(join(repo, 'fixtures'));
    await writeFile(join(repo, 'fixtures', 'two-logs.json'), fixture(['a', 'b']));
    await writeFile(join(outside, 'secret.json'), fixture(['a', 'b']));
  });
  afterEach(async () => {
    await rm(repo, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('supports code lists, yes/no and counts, and set overrides', async () => {
    await writeFile(
      join(repo, 'keys.test.yaml'),
      `cases:
  - name: ok
    input: fixtures/two-logs.json
    expect: { allow: true, violations: no, warnings: 0 }
  - name: one log
    input: fixtures/two-logs.json
    set: { evidence.attestations.0.logOperators: [a] }
    expect: { allow: false, violations: 1 }
  - name: one log each
    input: fixtures/two-logs.json
    set:
      evidence.attestations.0.logOperators: [a]
      evidence.attestations.1.logOperators: [a]
    expect: { allow: false, violations: [INSUFFICIENT_LOG_COVERAGE, INSUFFICIENT_LOG_COVERAGE] }
  - name: wrong expectation
    input: fixtures/two-logs.json
    expect: { allow: false, violations: yes }
`,
    );
    const r = await runPolicyTests(repo, { requireTests: true });
    expect(r.errors).toEqual([]);
    expect(r.cases.map((c) => [c.name, c.passed, c.at.line])).toEqual([['ok', true, 2], ['one log', true, 5], ['one log each', true, 9], ['wrong expectation', false, 15]]);
    expect(r.ok).toBe(false);
    const xml = toJUnit(r);
    expect(xml).toContain('tests="4" failures="1" errors="0"');
    expect(xml).toContain('line="15"');
  });

  it('refuses fixtures outside the repository, also through a symlink', async () => {
    await symlink(join(outside, 'secret.json'), join(repo, 'fixtures', 'link.json'));
    await writeFile(join(repo, 'keys.test.yaml'), `cases:\n  - name: escape\n    input: ${join(outside, 'secret.json')}\n    expect: { allow: true }\n  - name: via link\n    input: fixtures/link.json\n    expect: { allow: true }\n`);
    const r = await runPolicyTests(repo);
    expect(r.cases).toEqual([]);
    expect(r.errors.map((e) => [e.kind, e.line])).toEqual([['fixture-outside', 3], ['fixture-outside', 6]]);
  });

  // A pull request's suite must not turn the checkout's .git/config (the job's token in an
  // extraheader or a remote URL) into a fixture whose parse errors quote it into the PR comment.
  const SECRET = 'c2VjcmV0dG9rZW4=';
  const GIT_CONFIG = `[core]\n\tbare = false\n[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic ${SECRET}\n`;

  it('refuses dot-paths as fixtures and bundles, also through a symlink', async () => {
    await mkdir(join(repo, '.git'));
    await writeFile(join(repo, '.git', 'config'), GIT_CONFIG);
    await symlink(join(repo, '.git', 'config'), join(repo, 'fixtures', 'config.yaml'));
    await writeFile(join(repo, 'keys.test.yaml'), `cases:\n  - name: direct\n    input: .git/config\n    expect: { allow: true }\n  - name: via link\n    input: fixtures/config.yaml\n    expect: { allow: true }\n  - name: bundle\n    bundle: fixtures/../.git\n    expect: { allow: true }\n`);
    const r = await runPolicyTests(repo);
    expect(r.cases).toEqual([]);
    expect(r.errors.map((e) => [e.kind, e.line])).toEqual([['fixture-hidden', 3], ['fixture-hidden', 6], ['fixture-hidden', 9]]);
    expect(JSON.stringify(r)).not.toContain(SECRET);
  });

  it('refuses a policies directory that is a symbolic link (to the whole checkout)', async () => {
    await mkdir(join(repo, '.git'));
    await writeFile(join(repo, '.git', 'config'), GIT_CONFIG);
    await symlink('.', join(repo, 'policies'));
    await writeFile(join(repo, 'keys.test.yaml'), `cases:\n  - name: ok\n    input: fixtures/two-logs.json\n    expect: { allow: true }\n`);
    const r = await runPolicyTests(join(repo, 'policies'));
    expect(r.ok).toBe(false);
    expect(r.cases).toEqual([]);
    expect(r.errors.map((e) => e.kind)).toEqual(['root-symlink']);
    const cwd = process.cwd();
    process.chdir(repo);
    try {
      const rel = await runPolicyTests('policies/');
      expect(rel.errors.map((e) => e.kind)).toEqual(['root-symlink']);
    } finally {
      process.chdir(cwd);
    }
    // The real directory still works.
    expect((await runPolicyTests(repo)).ok).toBe(true);
  });

  it('refuses a symlinked root before reading anything under it: through `..`, an ancestor link or a link to outside', async () => {
    // A directory of the CI machine holding a policy-named file that does not parse.
    await writeFile(join(outside, 'x.policy.yaml'), `token: "${SECRET}\n`);
    await symlink(outside, join(repo, 'policies'));
    await mkdir(join(repo, 'sub'));
    await mkdir(join(repo, 'real', 'pol'), { recursive: true });
    await writeFile(join(repo, 'real', 'pol', 'keys.policy.yaml'), KEY_POLICY);
    await symlink('real', join(repo, 'via'));
    const cwd = process.cwd();
    try {
      for (const [dir, root] of [[repo, 'policies'], [join(repo, 'sub'), '../policies'], [join(repo, 'sub'), join(repo, 'policies')], [repo, `${join(repo, 'policies')}/`], [repo, 'via/pol'], [join(repo, 'sub'), '../via/pol']]) {
        process.chdir(dir);
        const r = await runPolicyTests(root);
        expect({ root, kinds: r.errors.map((e) => e.kind), ok: r.ok }).toEqual({ root, kinds: ['root-symlink'], ok: false });
        expect(JSON.stringify(r)).not.toContain(SECRET);
      }
      // The real directory, by a path with `..` in it, is fine.
      process.chdir(join(repo, 'sub'));
      expect((await runPolicyTests('../real/pol')).errors).toEqual([]);
    } finally {
      process.chdir(cwd);
    }
  });

  it('does not quote a fixture\'s text in its parse errors', async () => {
    await writeFile(join(repo, 'fixtures', 'notyaml.yaml'), GIT_CONFIG);
    await writeFile(join(repo, 'keys.test.yaml'), `cases:\n  - name: not yaml\n    input: fixtures/notyaml.yaml\n    expect: { allow: true }\n`);
    const r = await runPolicyTests(repo);
    expect(r.errors.length).toBeGreaterThan(0);
    expect(r.errors.every((e) => e.kind === 'yaml' && e.file.endsWith('notyaml.yaml'))).toBe(true);
    expect(JSON.stringify(r.errors)).not.toContain(SECRET);
    expect(r.errors.every((e) => e.message.length <= 250)).toBe(true);
  });

  it('never quotes a fixture or an export in any parse error: a fixed text per parser code and the position', () => {
    const texts = [`%YAML ${SECRET}\n---\na: 1\n`, `%YAML 1.3 ${SECRET}\n---\na: 1\n`, `a: *${SECRET}\n`, `a: 1\n${SECRET}\n`, GIT_CONFIG, `a: 1\na: ${SECRET}\n`, `a: |${SECRET}\n  x\n`, `a: "\\${SECRET}"\n`, `{ ${SECRET}\n`, `\t${SECRET}\n`, `a: @${SECRET}\n`, `a: b\n--- ${SECRET}\n`];
    for (const text of texts) {
      const r = parseSource('f.yaml', text, { quoteText: false });
      expect({ text, parsed: r.issues.length > 0 }).toEqual({ text, parsed: true });
      for (const i of r.issues) {
        expect(i.message).not.toContain(SECRET.slice(0, 8));
        expect(i.message).toMatch(/^[a-z0-9 -]+( \[[A-Z_0-9]+\])?$/);
        expect(i.line).toBeGreaterThan(0);
      }
      // The deployments export (its note reaches the pull request's report).
      let message = '';
      try {
        parseDeployments('d.json', text);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toMatch(/^d\.json: /);
      expect(message).not.toContain(SECRET.slice(0, 8));
    }
  });

  it('reports a broken fixture, an unknown suite field and a missing expectation with file:line', async () => {
    await writeFile(join(repo, 'fixtures', 'bad.json'), '{\n  "evidence": {"imageDigest": "x", "attestations": []},\n  "host": {"seccomp": true}\n}\n');
    await writeFile(join(repo, 'a.test.yaml'), `cases:\n  - name: bad fixture\n    input: fixtures/bad.json\n    expect: { allow: false }\n  - name: no expect\n    input: fixtures/two-logs.json\n`);
    await writeFile(join(repo, 'b.test.yaml'), `cases: []\nvariables: {}\n`);
    const r = await runPolicyTests(repo);
    expect(r.errors.map((e) => [e.file.slice(repo.length + 1), e.line, e.kind])).toEqual([
      ['fixtures/bad.json', 3, 'input'],
      ['a.test.yaml', 5, 'suite'],
      ['b.test.yaml', 2, 'suite'],
    ]);
    expect(r.ok).toBe(false);
  });
});

describe('suite set paths', () => {
  it('refuses prototype keys (suites come from pull requests)', async () => {
    const { setPath } = await import('../../src/policy/suite.js');
    const target: Record<string, unknown> = {};
    expect(() => setPath(target, '__proto__.polluted', true)).toThrow();
    expect(() => setPath(target, 'a.constructor.prototype.polluted', true)).toThrow();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    setPath(target, 'a.0.b', 1);
    expect(target).toEqual({ a: [{ b: 1 }] });
  });
});
