/**
 * The host agent's policy reads in a child process (host/agent/policy-reader.ts), driven from a
 * small script running the built reader (its child is the built policy-reader-child.js):
 * - a file over the 64 MiB answer cap loads as in-process (POLICY_INVALID, too-large: 1 MiB a file,
 *   read no further), not IO_ERROR "more than 67108864 bytes";
 * - a reader that cannot be started is IO_ERROR with a message, not a bare {code: 'ENOENT'};
 * - a terminal's SIGINT/SIGHUP to the agent's process group does not fail the read in progress;
 * - an agent killed with SIGKILL does not leave a hung reader running for good.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSource } from '../../src/policy/source.js';
import { repoRoot } from '../support/cli.js';

const READER = JSON.stringify(join(repoRoot, 'build/host/agent/policy-reader.js'));
const LOAD = JSON.stringify(join(repoRoot, 'build/src/policy/load.js'));
const dirs: string[] = [];
const pids: number[] = [];
afterEach(() => {
  for (const p of pids.splice(0)) try { process.kill(p, 'SIGKILL'); } catch { /* gone */ }
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ct-policy-reader-'));
  dirs.push(d);
  return d;
}

/** Runs `body` (an async script with ChildPolicyReader imported) and returns its stdout parsed as JSON. */
function script(body: string): unknown {
  const src = `const { ChildPolicyReader } = await import(${READER});\nconst show = (e) => ({ code: e.code, message: e.message, kinds: e.details?.issues?.map((i) => i.kind) });\n${body}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', src], { encoding: 'utf8', timeout: 20_000 });
  expect(r.stderr).toBe('');
  return JSON.parse(r.stdout);
}

/** Opens the FIFO's writing end once a reader has it open (ENXIO until then). */
async function whenReading(fifo: string): Promise<number> {
  for (const end = Date.now() + 10_000; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) {
    try {
      return openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENXIO') throw e;
    }
  }
  throw new Error(`nothing opened ${fifo} for reading`);
}

function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('the host agent\'s policy reader child', () => {
  it('policy files over the 64 MiB answer cap, one or seventy, are POLICY_INVALID too-large (1 MiB a file), as read in-process, not IO_ERROR', () => {
    for (const [n, size] of [[1, (64 << 20) + 1], [70, 2 << 20]]) {
      const d = tmp();
      // Sparse: of each, only the first MiB and a little are read; none of its text is sent.
      for (let i = 0; i < n; i++) {
        writeFileSync(join(d, `big${i}.policy.yaml`), '# big\n');
        truncateSync(join(d, `big${i}.policy.yaml`), size);
      }
      const out = script(`
const { loadPolicies } = await import(${LOAD});
const r = new ChildPolicyReader();
const child = await r.read([${JSON.stringify(d)}]).then((t) => t.map((s) => [s.tooLarge, s.text.length]), show);
const inProcess = await loadPolicies([${JSON.stringify(d)}]).then(() => 'loaded', show);
const viaChild = await loadPolicies([${JSON.stringify(d)}], undefined, r.read).then(() => 'loaded', show);
console.log(JSON.stringify({ child, inProcess, viaChild }));`) as Record<string, { code?: string; kinds?: string[] }>;
      expect(out.child).toEqual(Array.from({ length: n }, () => [true, 0]));
      expect(out.inProcess).toMatchObject({ code: 'POLICY_INVALID', message: expect.stringMatching(/:1:1: error \[too-large\] file larger than 1048576 bytes/) });
      expect(out.viaChild).toEqual(out.inProcess);
      expect(new Set(out.viaChild.kinds)).toEqual(new Set(['too-large']));
    }
  });

  it('the 1 MiB limit counts bytes, as its message says: 600,000 two-byte characters are too large', () => {
    expect(parseSource('p.policy.yaml', `# ${'é'.repeat(600_000)}\n`).issues.map((i) => `${i.kind}: ${i.message}`)).toEqual(['too-large: file larger than 1048576 bytes']);
    expect(parseSource('p.policy.yaml', `# ${'é'.repeat(500_000)}\n`).issues).toEqual([]);
  });

  it('a reader that cannot be started (no node at process.execPath) is IO_ERROR saying so', () => {
    const d = tmp();
    const out = script(`
const r = new ChildPolicyReader();
process.execPath = '/nonexistent/node';
console.log(JSON.stringify(await r.read([${JSON.stringify(d)}]).then(() => 'read', show)));`);
    expect(out).toEqual({ code: 'IO_ERROR', message: 'the policy reader could not be started (/nonexistent/node): ENOENT' });
  });

  it('SIGINT and SIGHUP to the agent\'s process group (a terminal) leave the read in progress to finish', async () => {
    const d = tmp();
    const fifo = join(d, 'policy.yaml');
    execFileSync('mkfifo', [fifo]);
    // The "agent": its own process group, as an agent started from a shell is; it ignores both
    // signals itself (SIGHUP means "read again" to it).
    const agent = spawn(process.execPath, ['--input-type=module', '-e', `
for (const s of ['SIGINT', 'SIGHUP']) process.on(s, () => undefined);
const { ChildPolicyReader } = await import(${READER});
const r = new ChildPolicyReader();
const got = await r.read([${JSON.stringify(fifo)}]).then((t) => ({ text: t[0].text }), (e) => ({ code: e.code, message: e.message }));
console.log(JSON.stringify(got));`], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    pids.push(agent.pid!);
    let stdout = '';
    agent.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    const exited = new Promise((r) => agent.once('close', r));
    const fd = await whenReading(fifo);
    process.kill(-agent.pid!, 'SIGINT');
    process.kill(-agent.pid!, 'SIGHUP');
    await new Promise((r) => setTimeout(r, 300));
    writeSync(fd, 'version: 2\n');
    closeSync(fd);
    await exited;
    expect(JSON.parse(stdout)).toEqual({ text: 'version: 2\n' });
  });

  it('an agent killed with SIGKILL during a hung read leaves no reader running', async () => {
    const d = tmp();
    const fifo = join(d, 'policy.yaml');
    execFileSync('mkfifo', [fifo]);
    const agent = spawn(process.execPath, ['--input-type=module', '-e', `
const { ChildPolicyReader } = await import(${READER});
const r = new ChildPolicyReader();
void r.read([${JSON.stringify(fifo)}]);
console.log([...r.children][0].pid);`], { stdio: ['ignore', 'pipe', 'pipe'] });
    pids.push(agent.pid!);
    let stdout = '';
    agent.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
    // Opened, never written: the reader is blocked in its read, as on a gone NFS server.
    const fd = await whenReading(fifo);
    try {
      for (const end = Date.now() + 5000; !stdout.includes('\n') && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
      const reader = Number(stdout.trim());
      expect(reader).toBeGreaterThan(0);
      pids.push(reader);
      agent.kill('SIGKILL');
      for (const end = Date.now() + 5000; alive(reader) && Date.now() < end;) await new Promise((r) => setTimeout(r, 20));
      expect(alive(reader)).toBe(false);
    } finally {
      closeSync(fd);
    }
  });
});
