/**
 * `ct host run` whose --policies hang at its start (an NFS server gone; here a FIFO nobody writes
 * yet: its read blocks as a hung file system's does). Before, the first load had no time limit and
 * the agent never got past it; later loads already had 5 s. Now the start goes on after 5 s, says
 * that every assignment is refused (NO_POLICY) until the policies load, and says when they do.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runCt } from '../support/cli.js';
import { freePort } from '../support/registry.js';
import { until } from './fixture.js';

const policy = ['apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: late', 'match:', '  environments: [local]', 'signers:', '  - issuer: https://token.actions.githubusercontent.com', '    subject: https://github.com/o/r/.github/workflows/b.yml@refs/heads/main', 'attestations:', '  - predicateType: https://slsa.dev/provenance/v1', ''].join('\n');

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

  it('a hung policy file delays the start by 5 s, said, and assignments are refused until it loads', async () => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'host', 'run', '--server', `http://127.0.0.1:${await freePort()}`, '--name', 'edge-first',
      '--trust-store', join(dir, 'trust.json'), '--state-dir', join(dir, 'state'), '--policies', join(dir, 'policies.yaml')], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CT_ENROLL_TOKEN: '' } });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const t0 = Date.now();
    try {
      // Past the wait the start goes on (here to its refusal: no enrolment), the load still pending.
      await until('the start going on', () => /^error\[USAGE\]/m.test(stderr), 20_000).catch((e: Error) => {
        throw new Error(`${e.message}\n${stderr}`);
      });
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(stderr).toContain(`policies from ${join(dir, 'policies.yaml')} still loading after 5000 ms (a hung file system?): assignments are judged by no set (refused: NO_POLICY) until the load ends`);
    } finally {
      // The file system answers at last: the load ends (said), and the process with it.
      writeFileSync(join(dir, 'policies.yaml'), policy);
    }
    expect(await exited).toBe(1);
    expect(stderr).toMatch(/policies from .*policies\.yaml loaded: sha256:[0-9a-f]{64}/);
  }, 60_000);
});
