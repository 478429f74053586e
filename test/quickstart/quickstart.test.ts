/**
 * Issue 10 item 5 acceptance: `ct quickstart` on this machine brings examples/hello to running under
 * runc through the deploy server (a commit to the desired-state repository), and prints its greeting
 * read through the logs API; Ctrl-C (SIGINT) stops everything it started, containers included; a
 * second run reuses the directory (same key, ports and host) and brings hello back.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';
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

const runcList = () => (JSON.parse(execFileSync('runc', ['--root', join(dir(), 'host', 'runc'), 'list', '--format', 'json'], { encoding: 'utf8' })) ?? []) as { id: string; status: string }[];
const state = () => JSON.parse(readFileSync(join(dir(), 'quickstart.json'), 'utf8')) as { adminKey: string; ports: Record<string, number> };

/** SIGINT as a terminal's Ctrl-C; then nothing it started is left listening or running. */
async function interrupt(run: Run): Promise<void> {
  run.child.kill('SIGINT');
  expect(await run.exited).toBe(0);
  expect(run.out()).toContain('stopped. Everything is kept in');
  expect(runcList()).toEqual([]);
  for (const [name, port] of Object.entries(state().ports)) {
    const reached = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(2000) }).then(() => true, () => false);
    expect(`${name} ${reached ? 'still answers' : 'stopped'}`).toBe(`${name} stopped`);
  }
  expect(existsSync(join(dir(), 'quickstart.pid'))).toBe(false);
}

beforeAll(() => {
  requireHostTools();
  base = mkdtempSync(join(tmpdir(), 'ct-quickstart-'));
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
      expect(out).toContain(`dashboard        ${url}/`);
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
    } finally {
      if (run.child.exitCode === null) await interrupt(run);
    }
  }, 180_000);

  it('a second run reuses the directory (key, logs, ports, enrolled host) and brings hello back', async () => {
    const before = { key: readFileSync(join(dir(), 'signer.key')), state: state() };
    const run = start();
    try {
      const out = await waitFor(run, 'Ctrl-C stops all of it');
      expect(out).toContain(`reusing ${dir()}`);
      expect(out).not.toContain('packed and signed');
      expect(out).toContain('desired state unchanged: deploying the same bundle again');
      expect(out).toContain('  | hello from a .ctp\n');
      expect(readFileSync(join(dir(), 'signer.key')).equals(before.key)).toBe(true);
      expect(state().ports).toEqual(before.state.ports);
      expect(runcList()).toEqual([expect.objectContaining({ status: 'running' })]);
      // One directory, one quickstart: a second one at the same time is refused.
      const again = start();
      expect(await again.exited).toBe(1);
      expect(again.out()).toContain('error[USAGE]: ct quickstart is already running in');
    } finally {
      if (run.child.exitCode === null) await interrupt(run);
    }
  }, 180_000);
});
