/**
 * The build action's own overhead: `node dist/index.js` (as a runner runs it) packing, signing
 * with a key, logging in two VCS logs, verifying and pushing examples/hello, against `ct pack`,
 * `ct sign`, `ct verify` and `ct push` doing the same work from the command line, same run,
 * same servers. What the action adds — start-up of its bundle, input parsing, the job summary
 * and two commit statuses on a local GitHub API stand-in — must stay within 1 s.
 */
import { execFile } from 'node:child_process';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { timeMs, type BenchResult } from './harness.js';
import { startLogServer } from '../src/tlog/server.js';
import { addKey, addLog, newTrustStore } from '../src/trust/edit.js';

const exec = promisify(execFile);
// build/bench/action.bench.js → repository root
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BUDGET_MS = 1000;

type Support = {
  registry: typeof import('../test/support/registry.js');
  github: typeof import('../test/support/github-api.js');
  runner: typeof import('../test/action/runner.js');
};

/** Test support is not part of build/: transpile the pieces the bench uses. */
async function loadSupport(): Promise<Support> {
  const files = ['test/support/registry.ts', 'test/support/github-api.ts', 'test/action/runner.ts'].map((f) => join(repoRoot, f));
  await build({ entryPoints: files, outdir: join(repoRoot, 'build'), outbase: repoRoot, format: 'esm', platform: 'node', target: 'node20', logLevel: 'warning' });
  const load = (p: string) => import(pathToFileURL(join(repoRoot, 'build', p)).href);
  return { registry: await load('test/support/registry.js'), github: await load('test/support/github-api.js'), runner: await load('test/action/runner.js') };
}

export async function run(): Promise<BenchResult[]> {
  const s = await loadSupport();
  const dir = await mkdtemp(join(tmpdir(), 'ct-bench-action-'));
  const registry = await s.registry.startRegistry();
  const github = await s.github.startGitHubApi();
  const logs = [
    await startLogServer({ db: join(dir, 'a.db'), logId: 'log-a', operator: 'op-a' }),
    await startLogServer({ db: join(dir, 'b.db'), logId: 'log-b', operator: 'op-b' }),
  ];
  try {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const keyFile = join(dir, 'key.pem');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    await writeFile(keyFile, pem);
    let store = addKey(newTrustStore('bench'), 'builders', publicKey);
    for (const l of logs) store = addLog(store, l.logId, { operator: l.operator, url: l.url, publicKey: createPublicKey({ key: Buffer.from(l.publicKey, 'base64'), format: 'der', type: 'spki' }) });
    const storeFile = join(dir, 'store.json');
    await writeFile(storeFile, JSON.stringify(store));
    const ref = `${registry.host}/bench/hello:1.0.0`;
    let n = 0;

    const ct = (args: string[]) => exec(process.execPath, [join(repoRoot, 'bin', 'ct.js'), ...args], { cwd: repoRoot, env: { ...process.env, CT_KEY_PASSWORD: '' } });
    const cli = async () => {
      const out = join(dir, `cli-${n++}.ctp`);
      await ct(['pack', 'examples/hello', '--out', out]);
      await ct(['sign', out, '--key', keyFile, '--trust-store', storeFile, '--log', `log-a=${logs[0].url}`, '--log', `log-b=${logs[1].url}`]);
      await ct(['verify', out, '--trust-store', storeFile]);
      await ct(['push', out, ref, '--plain-http', '--allow-address', '127.0.0.1']);
    };
    const action = async () => {
      const r = await s.runner.runAction({
        actionYml: 'action.yml',
        githubToken: 'ghs_benchtoken',
        env: { GITHUB_REPOSITORY: 'acme/app', GITHUB_SHA: 'a'.repeat(40), GITHUB_REF: 'refs/heads/main', GITHUB_WORKFLOW_REF: 'acme/app/.github/workflows/release.yml@refs/heads/main', GITHUB_RUN_ID: '1', GITHUB_API_URL: github.url, RUNNER_TEMP: join(dir, `action-${n++}`) },
        inputs: { path: 'examples/hello', signing: 'key', key: pem, 'trust-store': storeFile, push: ref, 'registry-plain-http': 'true', 'registry-allowed-addresses': '127.0.0.1' },
      });
      if (r.code !== 0) throw new Error(`action failed: ${r.stdout.slice(-800)}`);
    };
    const cliMs = await timeMs(cli, 3);
    const actionMs = await timeMs(action, 3);
    // The fixed cost alone: load the bundle, read and reject the inputs, write the summary, post
    // nothing — against the CLI starting up to print its version.
    const startAction = async () => {
      const r = await s.runner.runAction({ actionYml: 'action.yml', env: { RUNNER_TEMP: join(dir, 'start') }, inputs: { path: '' } });
      if (r.code !== 1) throw new Error('expected the input error');
    };
    const startCt = () => ct(['--version']);
    const startActionMs = await timeMs(startAction, 5);
    const startCtMs = await timeMs(startCt, 5);
    const within = (base: number) => ({ max: Number(((base + BUDGET_MS) / base).toFixed(3)) });
    return [{
      name: 'build action start-up + input parsing + summary vs ct --version',
      value: startActionMs,
      baseline: startCtMs,
      unit: 'ms',
      better: 'lower',
      target: within(startCtMs),
      note: `fixed cost ${(startActionMs - startCtMs).toFixed(0)} ms over the CLI's start-up, budget ${BUDGET_MS} ms`,
    }, {
      name: 'build action vs ct pack+sign+verify+push',
      value: actionMs,
      baseline: cliMs,
      unit: 'ms',
      better: 'lower',
      // ≤ 1 s on top of the same work done by ct, expressed as a ratio to this run's baseline.
      target: within(cliMs),
      note: `overhead ${(actionMs - cliMs).toFixed(0)} ms, budget ${BUDGET_MS} ms; ct runs four processes, the action one`,
    }];
  } finally {
    await Promise.allSettled([registry.stop(), github.close(), ...logs.map((l) => l.close())]);
    await rm(dir, { recursive: true, force: true });
  }
}
