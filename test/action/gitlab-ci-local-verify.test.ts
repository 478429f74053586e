/**
 * Issue 10 items 1 and 3: the verify GitLab component's job run for real under gitlab-ci-local
 * (shell executor), with nothing of this checkout on PATH: its before_script installs the pinned
 * release exactly as written (`npm install --global … "cerro-torre@0.1.0"`) from a local stand-in
 * of the npm registry that serves this project's `npm pack` (the release artifact) and its
 * dependencies, into a clean prefix; then `ct-gitlab verify` from that install verifies a signed
 * bundle (two logs, key in the trust store) and judges it with the production policy. A bundle with
 * one byte changed fails the pipeline with DIGEST_MISMATCH. `ct --version` and `ct verify` run from
 * the same install.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { create as tarCreate } from 'tar';
import { REPO } from './runner.js';
import { startNpmRegistry, type NpmRegistry } from '../support/npm-registry.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { signCtp } from '../../src/attest/sign-ctp.js';
import { createState, layoutOf, loadSigningKey, writeTrustStore } from '../../src/quickstart/setup.js';

const GCL = join(REPO, 'node_modules/gitlab-ci-local/src/index.js');
const ORIGIN = 'git@gitlab.example.com:cerro-torre/cerro-torre.git';
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as Record<string, unknown> & { name: string; version: string };

let root: string;
let project: string;
let sha: string;
let registry: NpmRegistry;
let logs: LogServer[] = [];
const l = () => layoutOf(join(root, 'keys'));
const prefix = () => join(root, 'prefix');

/** Everything an npm in a fresh Node.js image would use, pointed at the stand-in and the clean prefix. */
const npmEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {};
  // Only what a job's shell has: no npm_* of the Jest run, no CT_* of this machine.
  for (const [k, v] of Object.entries(process.env)) if (!/^(npm_|CT_)/i.test(k)) env[k] = v;
  return {
    ...env, PATH: `${join(prefix(), 'bin')}:${process.env.PATH ?? ''}`, npm_config_registry: registry.url, npm_config_prefix: prefix(),
    npm_config_cache: join(root, 'npm-cache'), npm_config_update_notifier: 'false', npm_config_userconfig: join(root, 'npmrc'),
    // better-sqlite3's install fetches its prebuilt addon from GitHub releases; here from a local
    // mirror directory (prebuild-install's own setting) instead of compiling it for minutes.
    npm_config_better_sqlite3_local_prebuilds: join(root, 'prebuilds'),
  };
};

beforeAll(async () => {
  for (const bin of ['git', 'rsync', 'npm']) expect([bin, spawnSync('sh', ['-c', `command -v ${bin}`]).status]).toEqual([bin, 0]);
  root = mkdtempSync(join(tmpdir(), 'ct-gcl-verify-'));
  writeFileSync(join(root, 'npmrc'), '');
  // The release artifact: `npm pack` of this checkout (build/ is compiled by `npm test` first).
  const packed = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', root], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })) as { filename: string; files: { path: string }[] }[];
  const files = packed[0].files.map((f) => f.path);
  // What ct needs at run time is in it; tests and benchmarks are not.
  expect(files).toEqual(expect.arrayContaining(['bin/ct.js', 'bin/ct-gitlab.js', 'build/src/cli/main.js', 'build/actions/build/gitlab-main.js', 'templates/verify.yml', 'examples/hello/ct.toml']));
  expect(files.filter((f) => /^build\/(test|bench)\//.test(f))).toEqual([]);
  const sqlite = JSON.parse(readFileSync(join(REPO, 'node_modules/better-sqlite3/package.json'), 'utf8')) as { version: string };
  mkdirSync(join(root, 'prebuilds'));
  await tarCreate({ gzip: true, cwd: join(REPO, 'node_modules/better-sqlite3'), file: join(root, 'prebuilds', `better-sqlite3-v${sqlite.version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`) }, ['build/Release/better_sqlite3.node']);
  registry = await startNpmRegistry({ nodeModules: join(REPO, 'node_modules'), tarballs: [{ name: pkg.name, version: pkg.version, manifest: pkg, file: join(root, packed[0].filename) }] });

  // A bundle signed into two logs by a key of the trust store; the production policy names the key.
  mkdirSync(l().dir, { recursive: true });
  const state = await createState(l());
  logs = [
    await startLogServer({ db: join(root, 'log1.db'), logId: 'log-one', operator: 'Operator One' }),
    await startLogServer({ db: join(root, 'log2.db'), logId: 'log-two', operator: 'Operator Two' }),
  ];
  await writeTrustStore(l(), loadSigningKey(l()), logs);
  // The merge-request gate judges what the bundle proves (signer, attestations, logs); runtime
  // rules (seccomp on the host) are the host's to judge, so this policy has none.
  mkdirSync(l().policies, { recursive: true });
  writeFileSync(join(l().policies, 'production.policy.yaml'), [
    'apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: production', 'mode: strict', 'match:', '  environments: [production]',
    'signers:', `  - keyId: ${state.keyId}`, 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', '  - predicateType: https://spdx.dev/Document',
    'logQuorum: 2', '',
  ].join('\n'));
  await packCtp({ from: { dir: join(REPO, 'examples', 'hello') }, out: join(root, 'hello.ctp') });
  await signCtp(join(root, 'hello.ctp'), { key: loadSigningKey(l()), logs: logs.map((g) => ({ id: g.logId, url: g.url })), out: join(root, 'hello.signed.ctp') });
  const bytes = readFileSync(join(root, 'hello.signed.ctp'));
  const at = bytes.indexOf('hello from a .ctp');
  expect(at).toBeGreaterThan(0);
  bytes[at] = 'j'.charCodeAt(0);
  writeFileSync(join(root, 'tampered.ctp'), bytes);

  // The project that includes the component by its GitLab address at this commit.
  project = join(root, 'project');
  mkdirSync(project);
  const git = (...a: string[]) => execFileSync('git', ['-C', project, '-c', 'user.name=t', '-c', 'user.email=t@example.com', '-c', 'commit.gpgsign=false', ...a], { encoding: 'utf8' }).trim();
  git('init', '-q', '-b', 'main');
  cpSync(join(REPO, 'templates'), join(project, 'templates'), { recursive: true });
  git('add', '-A');
  git('commit', '-qm', 'components');
  git('remote', 'add', 'origin', ORIGIN);
  writeFileSync(join(project, '.git/info/exclude'), '.home/\n.gitlab-ci-local/\n.gitlab-ci.yml\nct-*\n');
  sha = git('rev-parse', 'HEAD');
}, 300_000);

afterAll(async () => {
  await Promise.allSettled([registry?.close(), ...logs.map((g) => g.close())]);
  if (root) rmSync(root, { recursive: true, force: true });
});

async function pipeline(bundle: string) {
  for (const f of ['ct-outputs.env', 'ct-summary.md']) rmSync(join(project, f), { force: true });
  writeFileSync(join(project, '.gitlab-ci.yml'), [
    'stages: [test]', 'include:', `  - component: gitlab.example.com/cerro-torre/cerro-torre/verify@${sha}`, '    inputs:',
    `      bundle: ${bundle}`, `      policy: ${l().policies}`, `      trust-store: ${l().trustStore}`, '      environment: production', '',
  ].join('\n'));
  // Asynchronously: the npm registry stand-in answers from this process while the job runs.
  const child = spawn(process.execPath, [GCL, '--cwd', basename(project), '--force-shell-executor', '--home', join(project, '.home'), '--variable', 'CI_PIPELINE_SOURCE=merge_request_event',
    // A job with `image:` gets the container's CI_PROJECT_DIR (/builds/<project>) in its variables
    // from gitlab-ci-local even on the shell executor; a shell runner's is the checkout it runs in.
    '--variable', `CI_PROJECT_DIR=${project}`], {
    cwd: dirname(project), env: npmEnv(), stdio: ['ignore', 'pipe', 'pipe'], timeout: 280_000,
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const status = await new Promise<number | null>((done) => child.on('close', done));
  const r = { status, stdout: out, stderr: '' };
  const dotenvFile = join(project, 'ct-outputs.env');
  const dotenv = existsSync(dotenvFile) ? Object.fromEntries(readFileSync(dotenvFile, 'utf8').trim().split('\n').map((x) => [x.slice(0, x.indexOf('=')), x.slice(x.indexOf('=') + 1)])) : {};
  return { status: r.status, out: r.stdout + r.stderr, dotenv, summary: existsSync(join(project, 'ct-summary.md')) ? readFileSync(join(project, 'ct-summary.md'), 'utf8') : '' };
}

describe('the verify component under gitlab-ci-local, with ct installed by its before_script', () => {
  it('every component installs the version this package is (the one .github/workflows/release.yml publishes at its tag)', () => {
    const templates = readdirSync(join(REPO, 'templates')).filter((f) => f.endsWith('.yml'));
    expect(templates.length).toBeGreaterThan(0);
    for (const f of templates) {
      const text = readFileSync(join(REPO, 'templates', f), 'utf8');
      expect([f, /ct-version:\n(?:\s+\w+:.*\n)*?\s+default: (\S+)/.exec(text)?.[1]]).toEqual([f, pkg.version]);
      expect([f, text.includes('npm install --global --no-fund --no-audit "cerro-torre@$[[ inputs.ct-version ]]"')]).toEqual([f, true]);
    }
    const release = readFileSync(join(REPO, '.github/workflows/release.yml'), 'utf8');
    expect(release).toContain('npm publish --provenance');
  });

  it('installs the pinned release from the registry into a clean prefix, verifies the signed bundle and allows it', async () => {
    expect(spawnSync('sh', ['-c', 'command -v ct-gitlab'], { env: npmEnv() }).status).not.toBe(0);
    const r = await pipeline(join(root, 'hello.signed.ctp'));
    expect({ status: r.status, tail: r.status === 0 ? '' : r.out.slice(-4000) }).toEqual({ status: 0, tail: '' });
    // The before_script as written, resolved by name and version through the registry.
    expect(r.out).toContain(`$ command -v ct-gitlab >/dev/null || npm install --global --no-fund --no-audit "cerro-torre@${pkg.version}"`);
    expect(registry.requests).toEqual(expect.arrayContaining(['GET /cerro-torre', `GET /-/tarballs/cerro-torre/${pkg.version}.tgz`]));
    expect(existsSync(join(prefix(), 'lib/node_modules/cerro-torre/bin/ct-gitlab.js'))).toBe(true);
    expect(r.out).toContain('$ ct-gitlab verify');
    expect(r.out).toMatch(/PASS\s+cerro-torre-verify/);
    expect(r.dotenv).toMatchObject({ CT_DECISION: 'allow', CT_POLICIES: '["production"]' });
    expect(r.summary).toContain(r.dotenv.CT_IMAGE_DIGEST);
  }, 300_000);

  it('the installed ct runs: ct --version and ct verify from the clean prefix', () => {
    const ct = join(prefix(), 'bin', 'ct');
    expect(execFileSync(ct, ['--version'], { encoding: 'utf8', env: npmEnv() }).trim()).toBe(pkg.version);
    const ok = spawnSync(ct, ['verify', join(root, 'hello.signed.ctp'), '--trust-store', l().trustStore, '--log-quorum', '2'], { encoding: 'utf8', env: npmEnv() });
    expect({ status: ok.status, err: ok.status === 0 ? '' : ok.stderr }).toEqual({ status: 0, err: '' });
    const bad = spawnSync(ct, ['verify', join(root, 'tampered.ctp'), '--trust-store', l().trustStore, '--log-quorum', '2'], { encoding: 'utf8', env: npmEnv() });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain('DIGEST_MISMATCH');
  }, 60_000);

  it('a bundle with one byte changed fails the job with DIGEST_MISMATCH (the installed ct is reused)', async () => {
    const requests = registry.requests.length;
    const r = await pipeline(join(root, 'tampered.ctp'));
    expect(r.status).not.toBe(0);
    expect(r.out).toMatch(/FAIL\s+cerro-torre-verify/);
    expect(r.out).toContain('DIGEST_MISMATCH');
    expect(r.dotenv).toMatchObject({ CT_DECISION: 'deny', CT_CODE: 'DIGEST_MISMATCH' });
    // ct-gitlab is on PATH now: the before_script skips the install.
    expect(registry.requests.length).toBe(requests);
  }, 300_000);
});
