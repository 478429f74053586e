import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnsecuredJWT } from 'jose';
import { ciContext, claimsFromToken, GITHUB_BUILD_TYPE, GITLAB_BUILD_TYPE, LOCAL_BUILDER_ID, readGit } from '../../src/attest/ci-context.js';
import { slsaProvenance } from '../../src/attest/slsa.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const GITHUB_ENV = {
  GITHUB_ACTIONS: 'true',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REPOSITORY: 'acme/app',
  GITHUB_REPOSITORY_ID: '123456',
  GITHUB_REPOSITORY_OWNER_ID: '7890',
  GITHUB_REF: 'refs/heads/main',
  GITHUB_SHA: SHA,
  GITHUB_WORKFLOW_REF: 'acme/app/.github/workflows/build.yml@refs/heads/main',
  GITHUB_RUN_ID: '555',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_EVENT_NAME: 'push',
  RUNNER_ENVIRONMENT: 'github-hosted',
};
const GITLAB_ENV = {
  GITLAB_CI: 'true',
  CI_SERVER_URL: 'https://gitlab.com',
  CI_PROJECT_PATH: 'group/project',
  CI_PROJECT_URL: 'https://gitlab.com/group/project',
  CI_PROJECT_ID: '1000',
  CI_PROJECT_NAMESPACE_ID: '99',
  CI_COMMIT_SHA: SHA,
  CI_COMMIT_REF_NAME: 'v1.2.0',
  CI_COMMIT_TAG: 'v1.2.0',
  CI_JOB_ID: '42',
  CI_JOB_URL: 'https://gitlab.com/group/project/-/jobs/42',
  CI_JOB_NAME: 'build',
  CI_JOB_STARTED_AT: '2026-03-01T10:00:00Z',
  CI_PIPELINE_ID: '77',
  CI_PIPELINE_SOURCE: 'push',
  CI_RUNNER_ID: '12',
  CI_CONFIG_PATH: '.gitlab-ci.yml',
};
const NOW = new Date('2026-03-01T10:05:00.123Z');

describe('SLSA provenance v1 from CI context', () => {
  it('GitHub Actions environment', async () => {
    const p = slsaProvenance(await ciContext({ env: GITHUB_ENV }), { now: NOW, env: {} });
    expect(p.buildDefinition.buildType).toBe(GITHUB_BUILD_TYPE);
    expect(p.buildDefinition.externalParameters).toEqual({ workflow: { ref: 'refs/heads/main', repository: 'https://github.com/acme/app', path: '.github/workflows/build.yml' } });
    expect(p.buildDefinition.internalParameters).toEqual({ github: { event_name: 'push', repository_id: '123456', repository_owner_id: '7890', runner_environment: 'github-hosted' } });
    expect(p.buildDefinition.resolvedDependencies).toEqual([{ uri: 'git+https://github.com/acme/app@refs/heads/main', digest: { gitCommit: SHA } }]);
    expect(p.runDetails.builder.id).toBe('https://github.com/acme/app/.github/workflows/build.yml@refs/heads/main');
    expect(p.runDetails.metadata).toEqual({ invocationId: 'https://github.com/acme/app/actions/runs/555/attempts/2', finishedOn: '2026-03-01T10:05:00Z' });
  });

  it('GitHub OIDC claims win: a reusable workflow is the builder', async () => {
    const token = new UnsecuredJWT({
      iss: 'https://token.actions.githubusercontent.com',
      repository: 'acme/app',
      repository_id: '123456',
      repository_owner_id: '7890',
      ref: 'refs/tags/v2',
      sha: SHA,
      workflow_ref: 'acme/app/.github/workflows/release.yml@refs/tags/v2',
      job_workflow_ref: 'acme/shared/.github/workflows/build.yml@refs/tags/v1',
      run_id: '556',
      run_attempt: '1',
      event_name: 'release',
      runner_environment: 'self-hosted',
    }).encode();
    const p = slsaProvenance(await ciContext({ env: GITHUB_ENV, claims: claimsFromToken(token) }), { now: NOW, env: {} });
    expect(p.runDetails.builder.id).toBe('https://github.com/acme/shared/.github/workflows/build.yml@refs/tags/v1');
    expect(p.buildDefinition.externalParameters.workflow).toEqual({ ref: 'refs/tags/v2', repository: 'https://github.com/acme/app', path: '.github/workflows/release.yml' });
    expect(p.buildDefinition.internalParameters).toMatchObject({ github: { event_name: 'release', runner_environment: 'self-hosted' } });
    expect(p.buildDefinition.resolvedDependencies![0].uri).toBe('git+https://github.com/acme/app@refs/tags/v2');
  });

  it('GitLab CI predefined variables', async () => {
    const p = slsaProvenance(await ciContext({ env: GITLAB_ENV }), { now: NOW, env: {} });
    expect(p.buildDefinition.buildType).toBe(GITLAB_BUILD_TYPE);
    expect(p.buildDefinition.externalParameters).toEqual({ source: 'https://gitlab.com/group/project', ref: 'refs/tags/v1.2.0', config_path: '.gitlab-ci.yml', job: 'build' });
    expect(p.buildDefinition.internalParameters).toEqual({ gitlab: { project_id: '1000', namespace_id: '99', pipeline_id: '77', pipeline_source: 'push', runner_id: '12' } });
    expect(p.buildDefinition.resolvedDependencies).toEqual([{ uri: 'git+https://gitlab.com/group/project@refs/tags/v1.2.0', digest: { gitCommit: SHA } }]);
    expect(p.runDetails.builder.id).toBe('https://gitlab.com/group/project/-/runners/12');
    expect(p.runDetails.metadata).toEqual({ invocationId: 'https://gitlab.com/group/project/-/jobs/42', startedOn: '2026-03-01T10:00:00Z', finishedOn: '2026-03-01T10:05:00Z' });
  });

  it('an incomplete CI environment is a USAGE error naming what is missing', async () => {
    const { GITHUB_SHA: _s, ...noSha } = GITHUB_ENV;
    await expect(ciContext({ env: noSha })).rejects.toMatchObject({ code: 'USAGE', details: { missing: ['GITHUB_SHA'] } });
    const { CI_COMMIT_SHA: _c, ...noCommit } = GITLAB_ENV;
    await expect(ciContext({ env: noCommit })).rejects.toMatchObject({ code: 'USAGE' });
  });

  it('SOURCE_DATE_EPOCH sets finishedOn; a bad one is refused', async () => {
    const ctx = await ciContext({ env: GITHUB_ENV });
    expect(slsaProvenance(ctx, { env: { SOURCE_DATE_EPOCH: '1700000000' } }).runDetails.metadata!.finishedOn).toBe('2023-11-14T22:13:20Z');
    expect(() => slsaProvenance(ctx, { env: { SOURCE_DATE_EPOCH: 'yesterday' } })).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});

describe('local builds', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-slsa-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads HEAD, the commit and origin from .git (loose ref)', async () => {
    const repo = join(dir, 'loose');
    await mkdir(join(repo, '.git', 'refs', 'heads'), { recursive: true });
    await mkdir(join(repo, 'sub'), { recursive: true });
    await writeFile(join(repo, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    await writeFile(join(repo, '.git', 'refs', 'heads', 'main'), `${SHA}\n`);
    await writeFile(join(repo, '.git', 'config'), '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:acme/app.git\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n');
    const p = slsaProvenance(await ciContext({ env: {}, dir: join(repo, 'sub') }), { now: NOW, env: {} });
    expect(p.runDetails.builder.id).toBe(LOCAL_BUILDER_ID);
    expect(p.buildDefinition.resolvedDependencies).toEqual([{ uri: 'git+https://github.com/acme/app.git@refs/heads/main', digest: { gitCommit: SHA } }]);
  });

  it('reads packed refs and drops credentials from the origin URL', async () => {
    const repo = join(dir, 'packed');
    await mkdir(join(repo, '.git'), { recursive: true });
    await writeFile(join(repo, '.git', 'HEAD'), 'ref: refs/heads/dev\n');
    await writeFile(join(repo, '.git', 'packed-refs'), `# pack-refs with: peeled\n${SHA} refs/heads/dev\n`);
    await writeFile(join(repo, '.git', 'config'), '[remote "origin"]\n\turl = https://user:tok@git.example/acme/app\n');
    const git = await readGit(repo);
    expect(git).toEqual({ uri: 'git+https://git.example/acme/app@refs/heads/dev', commit: SHA, ref: 'refs/heads/dev' });
  });

  it('without git: no resolved dependencies', async () => {
    const plain = join(dir, 'plain');
    await mkdir(plain, { recursive: true });
    const ctx = await ciContext({ env: {}, dir: plain });
    // os.tmpdir() is not inside a git checkout (here and on CI).
    expect(ctx.source).toBeUndefined();
    expect(slsaProvenance(ctx, { now: NOW, env: {} }).buildDefinition.resolvedDependencies).toEqual([]);
    expect(ctx.builderId).toBe(LOCAL_BUILDER_ID);
  });

  it('a token that is not a JWT is a USAGE error', () => {
    expect(() => claimsFromToken('not-a-jwt')).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
