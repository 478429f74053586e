/**
 * The GitLab CI/CD components (templates/{build-sign,verify,deploy}.yml): their
 * `spec: inputs` interpolation resolved as GitLab resolves it, the resulting jobs checked
 * (keys, id_tokens, variables naming real action inputs, script), and the build-sign job run for
 * real: its variables and GitLab CI's predefined ones as the environment of `ct-gitlab build`
 * (bin/ct-gitlab.js), keyless with a GitLab-shaped SIGSTORE_ID_TOKEN accepted by the test
 * Fulcio, two VCS logs, and the commit status posted through Gitbeaker to a GitLab API stand-in.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveComponent, type Job } from './gitlab-components.js';
import { readActionYml, REPO } from './runner.js';
import { startSigstoreMock, type SigstoreMock } from '../support/sigstore-mock.js';
import { startGitlabApi, type GitlabApi } from '../support/gitlab-api.js';
import { startLogServer, type LogServer } from '../../src/tlog/index.js';
import { addLog, newTrustStore } from '../../src/trust/edit.js';
import { openCtp } from '../../src/bundle/read.js';
import { diagnoseChain } from '../support/chain-diagnosis.js';

const PKG_VERSION = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const COMPONENTS: [string, string, Record<string, unknown>][] = [
  ['templates/build-sign.yml', 'action.yml', { path: 'examples/hello' }],
  ['templates/verify.yml', 'actions/verify/action.yml', { policy: 'policies/production' }],
  ['templates/deploy.yml', 'actions/deploy/action.yml', { server: 'https://deploy.example.com', environment: 'staging', app: 'hello', bundle: `r.example.com/a/hello@sha256:${'a'.repeat(64)}` }],
];
// Variables the GitLab entry reads that are not action inputs.
const PLUMBING = new Set(['CT_OUTPUT_DIR', 'CT_OUTPUT_ENV', 'CT_SUMMARY_FILE']);

function onlyJob(jobs: Record<string, Job>): [string, Job] {
  const names = Object.keys(jobs);
  expect(names).toHaveLength(1);
  return [names[0], jobs[names[0]]];
}

describe('GitLab components: spec inputs and resolved jobs', () => {
  it.each(COMPONENTS)('%s resolves into one valid job whose variables are inputs of %s', (component, actionYml, required) => {
    const [name, job] = onlyJob(resolveComponent(component, required));
    expect(name).toMatch(/^cerro-torre-/);
    expect(typeof job.stage).toBe('string');
    expect(typeof job.image).toBe('string');
    expect(Array.isArray(job.script)).toBe(true);
    const script = job.script as string[];
    expect(script.every((l) => typeof l === 'string' && l.trim().length > 0)).toBe(true);
    expect(script.some((l) => /^ct-gitlab (build|verify|deploy)$/.test(l))).toBe(true);
    // The official Node.js image gets the pinned release (the package's version) unless it has ct already.
    expect(job.image).toBe('node:22-bookworm-slim');
    expect(job.before_script).toEqual([`command -v ct-gitlab >/dev/null || npm install --global --no-fund --no-audit "cerro-torre@${PKG_VERSION}"`]);
    const inputs = Object.keys(readActionYml(actionYml).inputs ?? {});
    for (const [k, v] of Object.entries(job.variables ?? {})) {
      expect(['string', 'number', 'boolean']).toContain(typeof v);
      if (PLUMBING.has(k)) continue;
      const input = k.replace(/^CT_/, '').toLowerCase().replace(/_/g, '-');
      expect([k, inputs.includes(input)]).toEqual([k, true]);
    }
  });

  it('build-sign asks for SIGSTORE_ID_TOKEN with aud sigstore; deploy for a deploy-server token with the audience input', () => {
    const [, build] = onlyJob(resolveComponent('templates/build-sign.yml', {}));
    expect(build.id_tokens).toEqual({ SIGSTORE_ID_TOKEN: { aud: 'sigstore' } });
    const [, deploy] = onlyJob(resolveComponent('templates/deploy.yml', { ...COMPONENTS[2][2], audience: 'https://deploy.example.com' }));
    expect(deploy.id_tokens).toEqual({ CT_DEPLOY_ID_TOKEN: { aud: 'https://deploy.example.com' } });
    expect(deploy.environment).toEqual({ name: 'staging' });
  });

  it('inputs are interpolated with defaults and given values, typed values stay typed', () => {
    const [name, job] = onlyJob(resolveComponent('templates/build-sign.yml', { 'job-name': 'sign-it', stage: 'release', 'log-quorum': 3, sbom: false }));
    expect(name).toBe('sign-it');
    expect(job.stage).toBe('release');
    expect(job.variables).toMatchObject({ CT_PATH: '.', CT_SIGNING: 'keyless', CT_LOG_QUORUM: 3, CT_SBOM: false, CT_PROVENANCE: true });
  });

  it('rejects what GitLab rejects: unknown inputs, missing required ones, values outside options, wrong types', () => {
    expect(() => resolveComponent('templates/build-sign.yml', { nope: 'x' })).toThrow(/unknown input/);
    expect(() => resolveComponent('templates/verify.yml', {})).toThrow(/`policy` input: required/);
    expect(() => resolveComponent('templates/deploy.yml', { ...COMPONENTS[2][2], server: undefined } as Record<string, unknown>)).toThrow();
    expect(() => resolveComponent('templates/build-sign.yml', { signing: 'magic' })).toThrow(/allowed options/);
    expect(() => resolveComponent('templates/build-sign.yml', { 'log-quorum': 'two' })).toThrow(/not a number/);
  });
});

describe('GitLab build-sign job, run', () => {
  let dir: string;
  let sigstore: SigstoreMock;
  let gitlab: GitlabApi;
  let logs: LogServer[];
  const TOKEN = `glpat-${Date.now()}secret`;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-gitlab-'));
    sigstore = await startSigstoreMock();
    gitlab = await startGitlabApi({ token: TOKEN });
    logs = [await startLogServer({ db: join(dir, 'a.db'), logId: 'log-a', operator: 'op-a' }), await startLogServer({ db: join(dir, 'b.db'), logId: 'log-b', operator: 'op-b' })];
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled([sigstore?.close(), gitlab?.close(), ...(logs ?? []).map((l) => l.close())]);
    await rm(dir, { recursive: true, force: true });
  });

  it('signs keylessly as the GitLab project, logs in both VCS logs, writes the dotenv report and posts the status via Gitbeaker', async () => {
    let store = newTrustStore('gitlab-test');
    for (const l of logs) store = addLog(store, l.logId, { operator: l.operator, url: l.url, publicKey: createPublicKey({ key: Buffer.from(l.publicKey, 'base64'), format: 'der', type: 'spki' }) });
    await writeFile(join(dir, 'store.json'), JSON.stringify(store));
    await writeFile(join(dir, 'root.json'), JSON.stringify(sigstore.trustedRoot));
    const [, job] = onlyJob(resolveComponent('templates/build-sign.yml', {
      path: 'examples/hello', sigstore: 'custom', 'fulcio-url': sigstore.fulcioURL, 'rekor-url': sigstore.rekorURL,
      'trusted-root': join(dir, 'root.json'), 'trust-store': join(dir, 'store.json'), 'log-quorum': 3,
    }));
    const sha = 'b'.repeat(40);
    const ci: Record<string, string> = {
      GITLAB_CI: 'true', CI: 'true', CI_SERVER_URL: gitlab.url, CI_PROJECT_ID: '20020', CI_PROJECT_PATH: 'acme-group/app', CI_PROJECT_DIR: dir,
      CI_PROJECT_URL: 'https://gitlab.com/acme-group/app', CI_COMMIT_SHA: sha, CI_COMMIT_REF_NAME: 'main', CI_PIPELINE_ID: '1234', CI_JOB_ID: '5678',
      CI_JOB_URL: 'https://gitlab.com/acme-group/app/-/jobs/5678', CI_PIPELINE_URL: 'https://gitlab.com/acme-group/app/-/pipelines/1234',
      CI_SERVER_HOST: 'gitlab.com', CI_CONFIG_PATH: '.gitlab-ci.yml', CI_PIPELINE_SOURCE: 'push', CI_RUNNER_ID: '1',
    };
    const idToken = await sigstore.gitlabToken({ projectPath: 'acme-group/app', sha });
    const vars = Object.fromEntries(Object.entries(job.variables ?? {}).map(([k, v]) => [k, String(v).replace(/\$CI_PROJECT_DIR/g, dir)]));
    const env = { PATH: process.env.PATH ?? '', HOME: dir, ...ci, ...vars, SIGSTORE_ID_TOKEN: idToken, CT_GITLAB_TOKEN: TOKEN };
    const cmd = (job.script as string[])[0].split(' ');
    expect(cmd[0]).toBe('ct-gitlab');
    const child = spawn(process.execPath, [join(REPO, 'bin/ct-gitlab.js'), ...cmd.slice(1)], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => child.on('close', r));
    const why = code !== 0 && out.includes('UNTRUSTED_ROOT') ? await diagnoseChain(join(dir, 'ct-out/hello-1.0.0.ctp'), 'attestations/provenance.sigstore.json', join(dir, 'root.json')) : '';
    expect({ code, out: code === 0 ? '' : `${out}\n${why}` }).toEqual({ code: 0, out: '' });

    const dotenv = Object.fromEntries((await readFile(join(dir, 'ct-outputs.env'), 'utf8')).trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    expect(dotenv.CT_IDENTITY).toBe('https://gitlab.com/acme-group/app//.gitlab-ci.yml@refs/heads/main');
    expect(dotenv.CT_VERIFICATION).toBe('ALLOW');
    const ctp = await openCtp(dotenv.CT_BUNDLE_PATH);
    expect(ctp.has('attestations/provenance.sigstore.json') && ctp.has('attestations/vcs-log-entries.json')).toBe(true);
    expect(await readFile(join(dir, 'ct-summary.md'), 'utf8')).toContain(dotenv.CT_IMAGE_DIGEST);

    expect(gitlab.errors).toEqual([]);
    expect(gitlab.statuses.map((s) => s.body.state)).toEqual(['pending', 'success']);
    for (const s of gitlab.statuses) {
      expect(s.projectId).toBe('20020');
      expect(s.sha).toBe(sha);
      expect(s.body).toMatchObject({ name: 'cerro-torre/build', target_url: 'https://gitlab.com/acme-group/app/-/jobs/5678', ref: 'main', pipeline_id: 1234 });
      expect(String(s.body.description).length).toBeLessThanOrEqual(140);
    }
    for (const secret of [TOKEN, idToken]) expect(out.includes(secret)).toBe(false);
  }, 60_000);
});
