/**
 * Issue 10 item 5 acceptance: `ct quickstart` on this machine brings examples/hello to running under
 * runc through the deploy server (a commit to the desired-state repository), and prints its greeting
 * read through the logs API; Ctrl-C (SIGINT) stops everything it started, containers included; a
 * second run reuses the directory (same key, ports and host) and brings hello back.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type RequestListener } from 'node:http';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';
import { followLoginLink } from '../support/login-link.js';
import { requireHostTools } from '../host/support.js';

let base: string;
const dir = () => join(base, 'qs');

interface Run { child: ChildProcess; out: () => string; exited: Promise<number | null> }

function start(): Run {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'quickstart', '--dir', dir()], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => (out += d));
  child.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out: () => out, exited };
}

async function waitFor(run: Run, text: string, ms = 120_000): Promise<string> {
  const end = Date.now() + ms;
  while (!run.out().includes(text)) {
    if (run.child.exitCode !== null) throw new Error(`ct quickstart exited ${run.child.exitCode}:\n${run.out()}`);
    if (Date.now() > end) throw new Error(`timed out waiting for ${JSON.stringify(text)}:\n${run.out()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return run.out();
}

/** A quickstart run while another program answers on `port` with `handler`; `check` reads its output. */
async function whileSquatted(port: number, handler: RequestListener, check: (out: string) => Promise<void>): Promise<void> {
  const squatter = createServer(handler);
  await new Promise<void>((r) => squatter.listen(port, '127.0.0.1', r));
  const run = start();
  try {
    await check(await waitFor(run, 'Ctrl-C stops all of it'));
  } finally {
    if (run.child.exitCode === null) await interrupt(run);
    await new Promise<void>((r) => { squatter.close(() => r()); squatter.closeAllConnections(); });
  }
}

const runcList = () => (JSON.parse(execFileSync('runc', ['--root', join(dir(), 'host', 'runc'), 'list', '--format', 'json'], { encoding: 'utf8' })) ?? []) as { id: string; status: string }[];
const state = () => JSON.parse(readFileSync(join(dir(), 'quickstart.json'), 'utf8')) as { adminKey: string; ports: Record<string, number> };

interface Step { title: string; commands: string[]; expect: string }

/** "What to try next" as printed: the export line, then numbered steps of commands and their → expectation. */
function tryNext(out: string): { exportLine: string; steps: Step[] } {
  const lines = out.slice(out.indexOf('What to try next')).split('\n');
  const exportLine = lines.find((x) => x.startsWith('  export CT_URL='))?.trim() ?? '';
  const steps: Step[] = [];
  for (const line of lines) {
    const head = /^ {2}(\d)\. (.*)$/.exec(line);
    if (head) steps.push({ title: head[2], commands: [], expect: '' });
    const step = steps.at(-1);
    if (!step) continue;
    if (/^ {7}\S/.test(line) || /^ {9}\S/.test(line)) {
      const prev = step.commands.at(-1);
      if (prev?.endsWith('\\')) step.commands[step.commands.length - 1] = `${prev}\n${line}`;
      else step.commands.push(line.trim());
    } else if (line.startsWith('     → ') && !step.expect) step.expect = line.slice(7);
  }
  return { exportLine, steps };
}

/** Runs a step's commands as printed, in the quickstart directory with ct on PATH; each one's exit status. */
function runStep(exportLine: string, step: Step): { codes: number[]; expected: number[]; stdout: string } {
  const bin = join(base, 'bin');
  const script = [exportLine, ...step.commands.flatMap((c) => [c, 'echo "::exit:$?"'])].join('\n');
  const r = spawnSync('bash', ['-c', script], {
    cwd: dir(), encoding: 'utf8', timeout: 120_000,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, GIT_AUTHOR_NAME: 'you', GIT_AUTHOR_EMAIL: 'you@localhost', GIT_COMMITTER_NAME: 'you', GIT_COMMITTER_EMAIL: 'you@localhost' },
  });
  const codes = [...r.stdout.matchAll(/::exit:(\d+)/g)].map((m) => Number(m[1]));
  // A command annotated `# exit N` must exit N; every other one 0.
  const expected = step.commands.map((c) => Number(/# exit (\d+)/.exec(c)?.[1] ?? 0));
  return { codes, expected, stdout: `${r.stdout}\n${r.stderr}` };
}

async function deploymentOf(url: string, key: string, commit: string): Promise<{ status: string; reason: string | null; message: string | null }> {
  const end = Date.now() + 90_000;
  for (;;) {
    const r = (await (await fetch(`${url}/api/v1/deployments`, { headers: { authorization: `Bearer ${key}` } })).json()) as { deployments: { app: string; commit: string; status: string; reason: string | null; message: string | null }[] };
    const d = r.deployments.find((x) => x.app === 'hello' && x.commit === commit);
    if (d && ['succeeded', 'denied', 'failed'].includes(d.status)) return d;
    if (Date.now() > end) throw new Error(`no final deployment of ${commit}: ${JSON.stringify(r.deployments.slice(0, 3))}`);
    await new Promise((res) => setTimeout(res, 500));
  }
}

/** SIGINT as a terminal's Ctrl-C; then nothing it started is left listening or running. */
async function interrupt(run: Run): Promise<void> {
  run.child.kill('SIGINT');
  expect(await run.exited).toBe(0);
  expect(run.out()).toContain('stopped. Everything is kept in');
  expect(runcList()).toEqual([]);
  // hello was asked to stop (SIGTERM, as ct host stop does) and ended by itself: exit 0, not 137.
  const ps = spawnSync(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'host', 'ps', '--state-dir', join(dir(), 'host'), '--json'], { encoding: 'utf8' });
  const containers = JSON.parse(ps.stdout) as { app: string; exitCode: number | null }[];
  expect(containers.filter((c) => c.app === 'hello').map((c) => c.exitCode)).toEqual([0]);
  for (const [name, port] of Object.entries(state().ports)) {
    const reached = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }).then(() => true, () => false);
    expect(`${name} ${reached ? 'still answers' : 'stopped'}`).toBe(`${name} stopped`);
  }
  expect(existsSync(join(dir(), 'quickstart.pid'))).toBe(false);
  // Every child stopped: no record of them is left for a later run to stop.
  expect(existsSync(join(dir(), 'children.json'))).toBe(false);
}

beforeAll(() => {
  requireHostTools();
  base = mkdtempSync(join(tmpdir(), 'ct-quickstart-'));
  // `ct` on the PATH, as the printed steps assume (npm link does the same for good).
  mkdirSync(join(base, 'bin'));
  writeFileSync(join(base, 'bin', 'ct'), `#!/bin/sh\nexec "${process.execPath}" "${join(repoRoot, 'bin', 'ct.js')}" "$@"\n`);
  chmodSync(join(base, 'bin', 'ct'), 0o755);
});

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

describe('ct quickstart', () => {
  it('deploys examples/hello through a commit, prints its greeting from the logs API, and stops everything on Ctrl-C', async () => {
    const run = start();
    try {
      const out = await waitFor(run, 'Ctrl-C stops all of it');
      expect(out).toContain(`created ${dir()}`);
      expect(out).toMatch(/committed [0-9a-f]{12} to .*desired\.git/);
      expect(out).toMatch(/hello is running under runc on host quickstart; its log, read through http:\/\/127\.0\.0\.1:\d+\/api\/v1\/hosts\/[0-9a-f-]+\/logs/);
      expect(out).toContain('  | hello from a .ctp\n');
      expect(out).toContain('  | This file was packed by ct pack into a one-layer OCI image.');
      const { adminKey, ports } = state();
      const url = `http://127.0.0.1:${ports.server}`;
      expect(out).toMatch(/1\. Tamper[\s\S]*2\. Roll back[\s\S]*3\. Change the policy/);
      // What the output claims, asked directly: runc runs hello; the server records the deploy of
      // that commit as succeeded, and its logs API serves the greeting.
      expect(runcList()).toEqual([expect.objectContaining({ id: expect.stringMatching(/^ct-production-hello-/), status: 'running' })]);
      const auth = { authorization: `Bearer ${adminKey}` };
      const sha = execFileSync('git', ['-C', join(dir(), 'desired.git'), 'rev-parse', 'main'], { encoding: 'utf8' }).trim();
      const deployments = (await (await fetch(`${url}/api/v1/deployments`, { headers: auth })).json()) as { deployments: { app: string; commit: string; status: string }[] };
      expect(deployments.deployments).toContainEqual(expect.objectContaining({ app: 'hello', commit: sha, status: 'succeeded' }));
      const logsUrl = /read through (\S+):/.exec(out)![1];
      const container = runcList()[0].id;
      const logs = (await (await fetch(`${logsUrl}?container=${container}`, { headers: auth })).json()) as { text: string };
      expect(logs.text).toContain('hello from a .ctp');

      // The dashboard line is a one-time sign-in link: its page's Sign in button opens the dashboard signed in.
      const link = new RegExp(`dashboard        (${url}/auth/link\\?token=\\S+)`).exec(out)?.[1];
      expect(link).toBeDefined();
      const signedIn = await followLoginLink(link!);
      expect([signedIn.status, signedIn.headers.get('location')]).toEqual([303, '/']);
      const cookie = signedIn.headers.getSetCookie().find((c) => c.startsWith('__Host-ct_session='))!.split(';')[0];
      expect((await fetch(`${url}/`, { headers: { cookie } })).status).toBe(200);
      const overview = (await (await fetch(`${url}/api/v1/overview`, { headers: { cookie } })).json()) as object;
      expect(JSON.stringify(overview)).toContain('"hello"');

      // What to try next, run as printed; each printed expectation is checked through the API and runc.
      const { exportLine, steps } = tryNext(out);
      expect(steps.map((x) => x.title.split(':')[0])).toEqual(['Tamper', 'Roll back', 'Change the policy', 'Apply it']);
      const head = () => execFileSync('git', ['-C', join(dir(), 'desired.git'), 'rev-parse', 'main'], { encoding: 'utf8' }).trim();
      const running = runcList();

      const tamper = runStep(exportLine, steps[0]);
      expect({ codes: tamper.codes, out: tamper.codes.join() === tamper.expected.join() ? '' : tamper.stdout }).toEqual({ codes: tamper.expected, out: '' });
      expect(tamper.expected).toContain(1);
      const code = /denied with ([A-Z_]+)/.exec(steps[0].expect)?.[1];
      expect(code).toBeDefined();
      expect(tamper.stdout).toContain(code!);
      expect(head()).not.toBe(sha);
      const denied = await deploymentOf(url, adminKey, head());
      expect({ status: denied.status, reason: denied.reason }).toEqual({ status: 'denied', reason: code });
      expect(steps[0].expect).toContain('hello keeps running');
      expect(runcList()).toEqual(running);

      const rollback = runStep(exportLine, steps[1]);
      expect({ codes: rollback.codes, out: rollback.codes.join() === rollback.expected.join() ? '' : rollback.stdout }).toEqual({ codes: rollback.expected, out: '' });
      expect(steps[1].expect).toContain('a new deployment of the reverted commit succeeds');
      expect(await deploymentOf(url, adminKey, head())).toMatchObject({ status: 'succeeded' });
      expect(runcList()).toEqual([expect.objectContaining({ id: running[0].id, status: 'running' })]);

      const policy = runStep(exportLine, steps[2]);
      expect({ codes: policy.codes, out: policy.codes.join() === policy.expected.join() ? '' : policy.stdout }).toEqual({ codes: policy.expected, out: '' });
      expect(steps[2].expect).toContain('hello is now-denied');
      const impact = JSON.parse(policy.stdout.slice(policy.stdout.indexOf('{'), policy.stdout.lastIndexOf('}') + 1)) as { deployments: { app: string; change: string }[] };
      expect(impact.deployments).toContainEqual(expect.objectContaining({ app: 'hello', change: 'now-denied' }));

      const policyFile = join(dir(), 'policies', 'production.policy.yaml');
      const before = readFileSync(policyFile, 'utf8');
      const apply = runStep(exportLine, steps[3]);
      expect({ codes: apply.codes, out: apply.codes.join() === apply.expected.join() ? '' : apply.stdout }).toEqual({ codes: apply.expected, out: '' });
      const applied = /denied with ([A-Z_]+)/.exec(steps[3].expect)?.[1];
      expect(applied).toBe('INSUFFICIENT_LOG_COVERAGE');
      const list = (await (await fetch(`${url}/api/v1/deployments`, { headers: { authorization: `Bearer ${adminKey}` } })).json()) as { deployments: { app: string; commit: string; status: string; reason: string | null }[] };
      expect(list.deployments.find((d) => d.app === 'hello' && d.commit.startsWith('api:'))).toMatchObject({ status: 'denied', reason: applied });
      expect(runcList()).toEqual([expect.objectContaining({ id: running[0].id, status: 'running' })]);
      // The last line put the policy back as it was.
      expect(readFileSync(policyFile, 'utf8')).toBe(before);
      // The server's own deploy VSAs verify with the trust store quickstart made (its key is a deployer).
      expect(readFileSync(join(dir(), 'logs', 'server.log'), 'utf8')).not.toMatch(/does not verify with this server's trust store/);
    } finally {
      if (run.child.exitCode === null) await interrupt(run);
    }
  }, 420_000);

  it('names every missing tool and its Debian package before starting anything', () => {
    // A PATH with runc, git and sh only: no multilog (daemontools), no busybox, no docker-registry there.
    const only = join(base, 'only-bin');
    mkdirSync(only, { recursive: true });
    for (const tool of ['runc', 'git', 'sh']) {
      const at = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      symlinkSync(at, join(only, tool));
    }
    const fresh = join(base, 'preflight');
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'quickstart', '--dir', fresh], { encoding: 'utf8', env: { ...process.env, PATH: only } });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/error\[HOST_TOOL_MISSING\]: ct quickstart needs multilog, busybox, iptables-save, iptables-restore: multilog writes the containers' logs; the host agent builds the containers' network with iptables; install them with the README set-up line \(apt-get install -y daemontools busybox-static iptables\)/);
    expect(existsSync(fresh)).toBe(false);
  });

  it('a second run reuses the directory (key, logs, ports, enrolled host) and brings hello back', async () => {
    const before = { key: readFileSync(join(dir(), 'signer.key')), state: state() };
    const run = start();
    try {
      const out = await waitFor(run, 'Ctrl-C stops all of it');
      expect(out).toContain(`reusing ${dir()}`);
      expect(out).not.toContain('packed and signed');
      expect(out).toContain('  | hello from a .ctp\n');
      expect(readFileSync(join(dir(), 'signer.key')).equals(before.key)).toBe(true);
      // Same ports, but for a registry or server port someone else took in between: that child moved, saying so.
      const moved = Object.fromEntries([...out.matchAll(/the (registry|server|transparency log log-one|transparency log log-two)'s port \d+ was taken: it listens on (\d+) now/g)].map((m) => [m[1].replace('transparency log log-one', 'log1').replace('transparency log log-two', 'log2'), Number(m[2])]));
      expect(state().ports).toEqual({ ...before.state.ports, ...moved });
      // The bundle's reference names the registry's port: a moved registry is a new desired state, committed.
      if (moved.registry) expect(out).toMatch(/committed [0-9a-f]{12} to /);
      else expect(out).toContain('desired state unchanged: deploying the same bundle again');
      expect(runcList()).toEqual([expect.objectContaining({ status: 'running' })]);
      // One directory, one quickstart: a second one at the same time is refused.
      const again = start();
      expect(await again.exited).toBe(1);
      expect(again.out()).toContain('error[USAGE]: ct quickstart is already running in');
    } finally {
      if (run.child.exitCode === null) await interrupt(run);
    }
  }, 180_000);

  it('a registry port someone else took between runs: the registry moves to a new port, kept, and hello is deployed from it', async () => {
    const before = state().ports;
    // A stand-in that answers /v2/ as a registry would: an answer from it must not pass for quickstart's own.
    await whileSquatted(before.registry, (_req, res) => res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}'), async (out) => {
      const moved = new RegExp(`the registry's port ${before.registry} was taken: it listens on (\\d+) now`).exec(out);
      expect(moved).not.toBeNull();
      expect(state().ports).toEqual({ ...before, registry: Number(moved![1]) });
      expect(out).toMatch(new RegExp(`committed [0-9a-f]{12} to `));
      expect(out).toContain('  | hello from a .ctp\n');
      expect(runcList()).toEqual([expect.objectContaining({ status: 'running' })]);
    });
  }, 180_000);

  it('a log port someone else took between runs: the log moves, the trust store follows it, and hello is deployed', async () => {
    const before = state().ports;
    await whileSquatted(before.log1, (_req, res) => res.writeHead(200).end('{}'), async (out) => {
      const moved = new RegExp(`the transparency log log-one's port ${before.log1} was taken: it listens on (\\d+) now`).exec(out);
      expect(moved).not.toBeNull();
      const port = Number(moved![1]);
      expect(state().ports).toEqual({ ...before, log1: port });
      const store = JSON.parse(readFileSync(join(dir(), 'trust.json'), 'utf8')) as { logs: Record<string, { url: string }> };
      expect([store.logs['log-one'].url, store.logs['log-two'].url]).toEqual([`http://127.0.0.1:${port}`, `http://127.0.0.1:${before.log2}`]);
      expect(out).toContain(`listed log-one at http://127.0.0.1:${before.log1}, it listens on http://127.0.0.1:${port}: updated`);
      // The moved log answers at the URL the trust store gives, with the entries of the earlier runs.
      const checkpoint = await fetch(`${store.logs['log-one'].url}/api/v1/checkpoint`, { signal: AbortSignal.timeout(5000) });
      expect(checkpoint.status).toBe(200);
      expect(Number((await checkpoint.text()).split('\n')[1])).toBeGreaterThan(0);
      expect(out).toContain('  | hello from a .ctp\n');
      expect(runcList()).toEqual([expect.objectContaining({ status: 'running' })]);
    });
  }, 180_000);

  it('a catch-all server on the server\'s port is not taken for ct serve: the server moves, and the admin key never reaches it', async () => {
    const before = state().ports;
    // Answers 200 to everything, as the old readiness check (any 200 from /api/v1/hosts) took for ct serve.
    const authorization: (string | undefined)[] = [];
    await whileSquatted(before.server, (req, res) => (authorization.push(req.headers.authorization), res.writeHead(200, { 'content-type': 'application/json' }).end('{"hosts":[],"deployments":[]}')), async (out) => {
      const moved = new RegExp(`the server's port ${before.server} was taken: it listens on (\\d+) now`).exec(out);
      expect(moved).not.toBeNull();
      expect(state().ports.server).toBe(Number(moved![1]));
      expect(out).toContain('  | hello from a .ctp\n');
      expect(authorization.filter((a) => a !== undefined)).toEqual([]);
    });
  }, 180_000);

  it('after a run that was killed (SIGKILL), the next run stops what it left running and deploys hello', async () => {
    const before = state().ports;
    const killed = start();
    await waitFor(killed, 'Ctrl-C stops all of it');
    killed.child.kill('SIGKILL');
    await killed.exited;
    const left = (JSON.parse(readFileSync(join(dir(), 'children.json'), 'utf8')) as { children: { name: string; pid: number }[] }).children;
    // Running, not a zombie waiting for whoever adopted it to reap it.
    const alive = (pid: number) => { try { return !/^\S+ \(.*\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8')); } catch { return false; } };
    expect(left.map((c) => [c.name, alive(c.pid)])).toEqual([['registry', true], ['server', true], ['host', true]]);
    const run = start();
    try {
      const out = await waitFor(run, 'Ctrl-C stops all of it');
      expect(out).toContain(`stopped what an interrupted ct quickstart left running: ${[...left].reverse().map((c) => `${c.name} (pid ${c.pid})`).join(', ')}`);
      expect(left.filter((c) => alive(c.pid))).toEqual([]);
      const moved = Object.fromEntries([...out.matchAll(/the (registry|server)'s port \d+ was taken: it listens on (\d+) now/g)].map((m) => [m[1], Number(m[2])]));
      expect(state().ports).toEqual({ ...before, ...moved });
      expect(out).toContain('  | hello from a .ctp\n');
      expect(runcList()).toEqual([expect.objectContaining({ status: 'running' })]);
    } finally {
      try {
        if (run.child.exitCode === null) await interrupt(run);
      } finally {
        // Without the fix the killed run's children would outlive the test: ended here, by their pids.
        for (const c of left) if (alive(c.pid)) try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
      }
    }
  }, 300_000);
});
