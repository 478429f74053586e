/**
 * `ct quickstart` asked to stop (SIGTERM, Ctrl-C) while it is still setting up. Before, the signal
 * was only looked at once the whole loop ran (the host connected, the deployment done: minutes when
 * a step is slow), and a KILL meanwhile left the registry, the server and a container running. Now
 * the wait in hand ends at once and what was started is stopped. A registry that never answers
 * (a stand-in on PATH) holds the set-up in its 60 s wait for the registry.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';
import { requireHostTools } from '../host/support.js';

let base: string;

beforeAll(() => {
  requireHostTools();
  base = mkdtempSync(join(tmpdir(), 'ct-qs-interrupt-'));
  mkdirSync(join(base, 'bin'));
  writeFileSync(join(base, 'bin', 'docker-registry'), '#!/bin/sh\nexec sleep 600\n');
  chmodSync(join(base, 'bin', 'docker-registry'), 0o755);
});
afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('ct quickstart interrupted during its set-up', () => {
  it('SIGTERM while it waits for the registry: it stops at once, and so does the registry it started', async () => {
    const dir = join(base, 'qs');
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'quickstart', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH: `${join(base, 'bin')}:${process.env.PATH}` },
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const record = join(dir, 'children.json');
    const end = Date.now() + 30_000;
    while (!(existsSync(record) && readFileSync(record, 'utf8').includes('registry')) && Date.now() < end && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const pid = (JSON.parse(readFileSync(record, 'utf8')) as { children: { name: string; pid: number }[] }).children.find((c) => c.name === 'registry')!.pid;
    expect(alive(pid)).toBe(true);
    child.kill('SIGTERM');
    const t0 = Date.now();
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still setting up'), 10_000))]);
    const took = Date.now() - t0;
    if (code === 'still setting up') await exited;
    expect([code, took < 10_000]).toEqual([0, true]);
    expect(out).toContain('asked to stop: stopped before the registry to answer: stopping what was started…');
    expect(out).toContain('stopped. Everything is kept in');
    expect(alive(pid)).toBe(false);
  }, 120_000);

  it('SIGTERM once the host connected (as packing begins): nothing is signed, pushed or committed', async () => {
    const dir = join(base, 'qs-pack');
    // The real registry this time: the set-up must get as far as the host.
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'quickstart', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      // The host's enrolment is recorded as it connected, just before examples/hello is packed.
      const enrolled = () => {
        try {
          return (JSON.parse(readFileSync(join(dir, 'quickstart.json'), 'utf8')) as { hostEnrolled?: boolean }).hostEnrolled === true;
        } catch {
          return false;
        }
      };
      const end = Date.now() + 90_000;
      while (!enrolled() && child.exitCode === null && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
      expect([enrolled(), child.exitCode]).toEqual([true, null]);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    // Before, pack went on to sign into both logs, push, commit and sync, and only the wait for
    // the deployment saw the signal.
    expect(out).toMatch(/asked to stop: stopped before (packing|signing) examples\/hello: stopping what was started…/);
    expect(out).not.toContain('packed and signed');
    expect(out).not.toContain('committed');
    expect(existsSync(join(dir, 'bundles', 'hello.signed.ctp'))).toBe(false);
  }, 150_000);
});
