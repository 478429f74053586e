/**
 * `ct host run` whose --policies hang at its start (an NFS server gone; here a FIFO nobody writes
 * yet: its read blocks as a hung file system's does). Before, the first load had no time limit and
 * the agent never got past it; later loads already had 5 s. Now the start goes on after 5 s, says
 * that every assignment is refused (NO_POLICY) until the policies load, and says when they do
 * (agent-process.test.ts). An agent that fails meanwhile (here: not enrolled) exits at once: the
 * pending read no longer keeps the process up until the file is written.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCt } from '../support/cli.js';
import { freePort } from '../support/registry.js';


describe('ct host run: the first policy load', () => {
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ct-first-load-'));
    expect((await runCt(['trust-store', 'init', '--id', 'first', '-o', join(dir, 'trust.json')])).code).toBe(0);
    execFileSync('mkfifo', [join(dir, 'policies.yaml')]);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('a hung policy file delays the start by 5 s, said; the agent\'s error then ends it with the read still hung', async () => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'host', 'run', '--server', `http://127.0.0.1:${await freePort()}`, '--name', 'edge-first',
      '--trust-store', join(dir, 'trust.json'), '--state-dir', join(dir, 'state'), '--policies', join(dir, 'policies.yaml')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CT_ENROLL_TOKEN: '' } });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const t0 = Date.now();
    // Past the wait the start goes on (here to its refusal: no enrolment), the load still pending;
    // nothing ever writes the FIFO. Before, the agent printed its error and stayed up.
    const exit = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 20_000).unref())]);
    if (exit === 'running') child.kill('SIGKILL');
    expect(exit).toBe(1);
    expect(stderr).toMatch(/^error\[USAGE\]/m);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(stderr).toContain(`policies from ${join(dir, 'policies.yaml')} still loading after 5000 ms (a hung file system?): assignments are judged by no set (refused: NO_POLICY) until the load ends`);
  }, 60_000);
});
