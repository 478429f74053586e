/**
 * Small things a first hour met, as a user sees them: `ct run --policies PATH` that cannot be read
 * is IO_ERROR (11), as `--policy FILE` is, not NO_POLICY (exit 4, read as a policy decision); the
 * `ct serve` banner says when the trust store or the policies failed to load instead of naming them
 * as if in force; `ct quickstart` names a missing iptables up front (HOST_TOOL_MISSING).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interruptAndWait, repoRoot, runCt } from '../support/cli.js';

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ct-first-hour-'));
  mkdirSync(join(dir, 'root'));
  writeFileSync(join(dir, 'root', 'a.txt'), 'a\n');
  expect((await runCt(['pack', join(dir, 'root'), '--name', 'fh', '--version', '1', '-o', join(dir, 'fh.ctp')])).code).toBe(0);
  expect((await runCt(['trust-store', 'init', '--id', 'fh', '-o', join(dir, 'trust.json')])).code).toBe(0);
}, 30_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ct run --policies', () => {
  it('a missing path is IO_ERROR (11), as --policy is', async () => {
    const missing = join(dir, 'no-such-policies');
    const r = await runCt(['run', join(dir, 'fh.ctp'), '--trust-store', join(dir, 'trust.json'), '--policies', missing]);
    expect(r.code).toBe(11);
    expect(r.stderr).toMatch(/^error\[IO_ERROR\]/);
    const single = await runCt(['run', join(dir, 'fh.ctp'), '--trust-store', join(dir, 'trust.json'), '--policy', `${missing}.json`]);
    expect(single.code).toBe(11);
  });
});

describe('ct serve start banner', () => {
  it('says the trust store and the policies failed to load, with the code', async () => {
    const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'serve'], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', CT_DATA_DIR: join(dir, 'data'), CT_TRUST_STORE: join(dir, 'missing-trust.json'), CT_POLICIES: join(dir, 'missing-policies'), CT_ADMIN_API_KEY: '', CT_CONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    try {
      for (const end = Date.now() + 30_000; !out.includes('registries:') && child.exitCode === null && Date.now() < end;) await new Promise((r) => setTimeout(r, 100));
      const line = (label: string) => out.split('\n').find((l) => l.startsWith(`  ${label}:`)) ?? `(no ${label} line in:\n${out}${err})`;
      expect(line('trust store')).toMatch(/FAILED TO LOAD: .*\(IO_ERROR\)/);
      expect(line('policies')).toMatch(/FAILED TO LOAD: .*\(IO_ERROR\)/);
      // The trust store is read once, at start: nothing loads it later (policies are reloaded).
      expect(line('trust store')).toContain('until the server is restarted with a trust store that loads');
      expect(line('policies')).toContain('until it loads');
    } finally {
      await interruptAndWait(child);
    }
  }, 60_000);
});

describe('ct quickstart preflight', () => {
  it('names a missing iptables-save / iptables-restore before starting anything', () => {
    if (process.getuid?.() !== 0) throw new Error('quickstart tests run as root (CI does); this process is not root');
    // Every tool quickstart needs on PATH but iptables's (docker-registry is also found at /usr/bin).
    const only = join(dir, 'only-bin');
    mkdirSync(only);
    for (const tool of ['runc', 'git', 'sh', 'multilog', 'busybox', 'docker-registry']) {
      const at = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
      if (!at) throw new Error(`${tool} is not installed (the README set-up line installs it)`);
      symlinkSync(at, join(only, tool));
    }
    const fresh = join(dir, 'qs');
    const r = spawnSync(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'quickstart', '--dir', fresh], { encoding: 'utf8', env: { ...process.env, PATH: only }, timeout: 60_000 });
    expect(r.status).toBe(11);
    expect(r.stderr).toMatch(/^error\[HOST_TOOL_MISSING\]: ct quickstart needs iptables-save, iptables-restore:/);
    expect(existsSync(fresh)).toBe(false);
  });
});
