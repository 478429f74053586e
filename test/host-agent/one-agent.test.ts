/**
 * `ct host run` on a state directory another agent serves is refused before it touches anything:
 * recovering a replace the live agent is still health-checking made both agents roll it back at
 * once (the app was left down: review of the crash-recovery change). The directory's files, a
 * replace record included, are exactly as they were.
 */
import { describe, it, expect, afterEach } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveControl } from '../../host/agent/control.js';
import { runHostAgent } from '../../host/main.js';
import { replaceRecordPath } from '../../host/lifecycle/replace-record.js';
import { lockPath, lockStateDir } from '../../host/agent/state-lock.js';
import { hostAction } from '../../host/local/commands.js';
import { isCtError } from '../../src/core/errors.js';
import { repoRoot } from '../support/cli.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

/** runHostAgent's refusal: its code and message, and whatever it printed (nothing, when refused first). */
async function secondAgent(stateDir: string): Promise<{ code?: string; message: string; out: string[] }> {
  const out: string[] = [];
  try {
    // The trust store does not exist: refused first means this never gets read.
    await runHostAgent({ server: 'http://127.0.0.1:9', stateDir, name: 'second', trustStore: join(stateDir, 'missing-trust.json'), policies: join(stateDir, 'missing-policies') },
      { out: (l: string) => out.push(l), err: (l: string) => out.push(l) } as never);
    return { message: 'not refused', out };
  } catch (e) {
    return isCtError(e) ? { code: e.code, message: e.message, out } : { message: String(e), out };
  }
}

describe('one agent per state directory', () => {
  it('a second `ct host run` is USAGE before recovery, leaving a replace record untouched', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-one-agent-'));
    dirs.push(stateDir);
    const live = await serveControl(stateDir, async () => ({ status: 'running' }));
    try {
      const record = replaceRecordPath(stateDir, 'prod-app');
      mkdirSync(join(record, '..'), { recursive: true });
      writeFileSync(record, '{"a replace the live agent is health-checking":true}');
      const before = readdirSync(stateDir, { recursive: true }).sort();
      expect(await secondAgent(stateDir)).toEqual({ code: 'USAGE', message: expect.stringContaining('another agent is running'), out: [] });
      expect(readdirSync(stateDir, { recursive: true }).sort()).toEqual(before);
      expect(readFileSync(record, 'utf8')).toBe('{"a replace the live agent is health-checking":true}');
    } finally {
      await live.close();
    }
  });

  it('an agent still starting (no control socket yet) holds the directory: a second is USAGE, by any path; kill -9 frees it', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-one-agent-'));
    dirs.push(stateDir);
    symlinkSync(stateDir, `${stateDir}-link`);
    dirs.push(`${stateDir}-link`);
    // Another process took the lock, as `ct host run` does first, and serves nothing yet.
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `
      const { lockStateDir } = await import(${JSON.stringify(join(repoRoot, 'build/host/agent/state-lock.js'))});
      await lockStateDir(${JSON.stringify(stateDir)});
      process.stdout.write('locked\\n');
      setInterval(() => undefined, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
        holder.once('exit', (c) => reject(new Error(`the holder exited (${c})`)));
      });
      const before = readdirSync(stateDir, { recursive: true }).sort();
      for (const dir of [stateDir, `${stateDir}-link`]) {
        expect(await secondAgent(dir)).toEqual({ code: 'USAGE', message: expect.stringContaining('another agent is running'), out: [] });
      }
      // `ct host stop` does not act beside it either (it would race the recovery).
      await expect(hostAction({ stateDir, id: 'production-app-0123456789', action: 'stop' }, { out: () => undefined, err: () => undefined } as never))
        .rejects.toMatchObject({ code: 'CONTAINER_BUSY', message: expect.stringContaining('an agent is starting') });
      expect(readdirSync(stateDir, { recursive: true }).sort()).toEqual(before);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => (holder.exitCode === null && holder.signalCode === null ? holder.once('exit', r) : r(undefined)));
    }
    // The kernel dropped it with the process: the next agent takes it (and it is exclusive in one process too).
    const lock = await lockStateDir(stateDir);
    await expect(lockStateDir(`${stateDir}-link`)).rejects.toMatchObject({ code: 'USAGE' });
    await lock.release();
    await (await lockStateDir(stateDir)).release();
  });

  it('an agent starting while a `ct host` command holds the lock waits for it; the command is named if it does not end', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-one-agent-'));
    dirs.push(stateDir);
    const hold = (ms: number) => spawn(process.execPath, ['--input-type=module', '-e', `
      const { lockStateDir } = await import(${JSON.stringify(join(repoRoot, 'build/host/agent/state-lock.js'))});
      const lock = await lockStateDir(${JSON.stringify(stateDir)}, 'ct host stop');
      process.stdout.write('locked\\n');
      setTimeout(() => lock.release(), ${ms});
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    const locked = (c: ReturnType<typeof hold>) => new Promise<void>((resolve) => c.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve()));
    const brief = hold(1500);
    await locked(brief);
    // Past the lock: it fails on what comes next (this test's trust store does not exist).
    const r = await secondAgent(stateDir);
    expect(r.message).toMatch(/missing-trust\.json/);
    // A command that outlasts the wait: the agent says which (here with a one-second wait).
    const long = hold(5000);
    await locked(long);
    await expect(lockStateDir(stateDir, 'agent', { waitForCommandMs: 1000 })).rejects.toMatchObject({ code: 'CONTAINER_BUSY', message: expect.stringContaining('a `ct host stop` command is acting') });
    long.kill('SIGKILL');
  });

  it('SIGHUP while the agent waits for the lock (still starting) does not end it: it is a policy reload, not a hangup', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-one-agent-'));
    dirs.push(stateDir);
    const holder = spawn(process.execPath, ['--input-type=module', '-e', `
      const { lockStateDir } = await import(${JSON.stringify(join(repoRoot, 'build/host/agent/state-lock.js'))});
      const lock = await lockStateDir(${JSON.stringify(stateDir)}, 'ct host stop');
      process.stdout.write('locked\\n');
      setTimeout(() => lock.release(), 3000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => holder.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve()));
    const agent = spawn(process.execPath, [join(repoRoot, 'build/src/cli/main.js'), 'host', 'run', '--server', 'http://127.0.0.1:9', '--name', 'hup', '--trust-store', join(stateDir, 'missing-trust.json'), '--policies', join(stateDir, 'missing-policies'), '--state-dir', stateDir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    agent.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => agent.on('exit', (code, signal) => resolve([code, signal])));
    try {
      // It waits for the lock in a flock child: from then on it is past where it takes SIGHUP.
      const children = () => readdirSync(`/proc/${agent.pid}/task`).flatMap((t) => readFileSync(`/proc/${agent.pid}/task/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
      const flockChild = () => children().some((c) => readFileSync(`/proc/${c}/comm`, 'utf8').trim() === 'flock');
      const t0 = Date.now();
      while (!flockChild()) {
        if (Date.now() - t0 > 10_000) throw new Error('the agent never waited for the lock');
        await new Promise((r) => setTimeout(r, 20));
      }
      agent.kill('SIGHUP');
      // Past the lock it fails on what comes next (the trust store does not exist), not on the signal.
      expect(await ended).toEqual([11, null]); // IO_ERROR's exit status
      expect(stderr).toMatch(/missing-trust\.json/);
    } finally {
      agent.kill('SIGKILL');
      holder.kill('SIGKILL');
    }
  });

  it('another user cannot take the lock to keep the agent from starting', async () => {
    expect(process.getuid?.()).toBe(0); // the host tests run as root, as the agent does
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-one-agent-')); // 0700, root's
    dirs.push(stateDir);
    // What a squatter would run (util-linux flock on the lock's path), as nobody.
    const squatter = spawnSync('flock', ['--exclusive', '--nonblock', lockPath(stateDir), '-c', 'echo locked; sleep 3'], { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 20_000 });
    expect({ status: squatter.status === 0 ? 'locked' : 'refused', stdout: squatter.stdout, stderr: squatter.stderr }).toEqual({ status: 'refused', stdout: '', stderr: expect.stringContaining('Permission denied') });
    await (await lockStateDir(stateDir)).release();
  });
});
