/**
 * The policy-check GitLab component's job run for real under gitlab-ci-local (shell executor):
 * a project whose origin is this project's GitLab path includes the component by GitLab's address
 * at the checked-out commit (gitlab-ci-local resolves it to templates/policy-check.yml locally),
 * its before_script and script run as written, with `ct-gitlab` from this checkout on PATH (so the
 * pinned npm install is skipped) and the MR's target branch fetched from a local bare repository.
 * An include of a component that does not exist fails the pipeline with GitLab's message.
 */
import { describe, expect, it, beforeAll, afterAll } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { REPO } from './runner.js';

const GCL = join(REPO, 'node_modules/gitlab-ci-local/src/index.js');
const ORIGIN = 'git@gitlab.example.com:cerro-torre/cerro-torre.git';

describe('gitlab-ci-local runs the policy-check component job', () => {
  let root: string;
  let project: string;
  let sha: string;
  beforeAll(() => {
    for (const bin of ['git', 'rsync']) expect([bin, spawnSync('sh', ['-c', `command -v ${bin}`]).status]).toEqual([bin, 0]);
    root = mkdtempSync(join(tmpdir(), 'ct-gcl-'));
    project = join(root, 'project');
    mkdirSync(join(project, 'bin'), { recursive: true });
    const git = (...a: string[]) => execFileSync('git', ['-C', project, '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...a], { encoding: 'utf8' }).trim();
    git('init', '-q', '-b', 'main');
    cpSync(join(REPO, 'templates'), join(project, 'templates'), { recursive: true });
    cpSync(join(REPO, 'examples/policy-repo/policies'), join(project, 'policies'), { recursive: true });
    git('add', '-A');
    git('commit', '-qm', 'base');
    git('remote', 'add', 'origin', ORIGIN);
    execFileSync('git', ['clone', '-q', '--bare', project, join(root, 'origin.git')]);
    writeFileSync(join(project, '.git/info/exclude'), 'bin/\n.home/\n.gitlab-ci-local/\n.gitlab-ci.yml\n');
    symlinkSync(join(REPO, 'bin/ct-gitlab.js'), join(project, 'bin/ct-gitlab'));
    sha = git('rev-parse', 'HEAD');
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  const run = (component: string, pipeline?: string) => {
    writeFileSync(join(project, '.gitlab-ci.yml'), pipeline ?? `stages: [test]\ninclude:\n  - component: gitlab.example.com/cerro-torre/cerro-torre/${component}@${sha}\n    inputs:\n      policies: policies\n      require-tests: true\n`);
    const vars = ['CI_PIPELINE_SOURCE=merge_request_event', 'CI_MERGE_REQUEST_TARGET_BRANCH_NAME=main', 'GIT_CONFIG_COUNT=1', `GIT_CONFIG_KEY_0=url.${join(root, 'origin.git')}.insteadOf`, `GIT_CONFIG_VALUE_0=${ORIGIN}`];
    return spawnSync(process.execPath, [GCL, '--cwd', basename(project), '--force-shell-executor', '--home', join(project, '.home'), ...vars.flatMap((v) => ['--variable', v])], {
      cwd: dirname(project), encoding: 'utf8', timeout: 120_000, env: { ...process.env, PATH: `${join(project, 'bin')}:${process.env.PATH ?? ''}` },
    });
  };

  it('runs before_script and script as written: lint, tests, report and JUnit', () => {
    const r = run('policy-check');
    const out = r.stdout + r.stderr;
    expect({ status: r.status, tail: r.status === 0 ? '' : out.slice(-3000) }).toEqual({ status: 0, tail: '' });
    expect(out).toContain('$ ct-gitlab policy-check');
    expect(out).toContain('$ git fetch --quiet origin "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME"');
    expect(out).toMatch(/PASS\s+cerro-torre-policy-check/);
    expect(readFileSync(join(project, 'policy-report.md'), 'utf8')).toContain('## Cerro Torre policy check: ✅ passed');
    expect(readFileSync(join(project, 'policy-junit.xml'), 'utf8')).toContain('failures="0"');
  }, 150_000);

  // The policy-repository example as shipped, its component address pointed at this checkout.
  // CT_SERVER_URL is optional (README): without it the export job does not run, and the check must
  // pass without a deployments file, never reading one the merge request put in its tree.
  it('the policy-repository example passes without CT_SERVER_URL and ignores a deployments file the MR commits', () => {
    const example = readFileSync(join(REPO, 'examples/policy-repo/.gitlab-ci.yml'), 'utf8');
    const address = '$CI_SERVER_FQDN/cerro-torre/cerro-torre/policy-check@1';
    expect(example).toContain(address);
    const planted = ['deployments.json', 'ct-deployments-export.json'];
    for (const f of planted) writeFileSync(join(project, f), '{"deployments": "planted by the merge request"}\n');
    try {
      const r = run('policy-check', example.replace(address, `gitlab.example.com/cerro-torre/cerro-torre/policy-check@${sha}`));
      const out = r.stdout + r.stderr;
      expect({ status: r.status, tail: r.status === 0 ? '' : out.slice(-3000) }).toEqual({ status: 0, tail: '' });
      expect(out).not.toMatch(/PASS\s+export-deployments/);
      expect(out).toMatch(/PASS\s+cerro-torre-policy-check/);
      const report = readFileSync(join(project, 'policy-report.md'), 'utf8');
      expect(report).toContain('## Cerro Torre policy check: ✅ passed');
      expect(report).toContain('No deployments export given');
    } finally {
      for (const f of planted) rmSync(join(project, f), { force: true });
    }
  }, 150_000);

  it('an include of a component that does not exist fails the pipeline, naming the files GitLab looks for', () => {
    const r = run('policy-chek');
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toContain('templates/policy-chek.yml,templates/policy-chek/template.yml');
  }, 150_000);
});
