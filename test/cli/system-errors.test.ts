/**
 * An operating-system error no command maps itself reaches the user as one IO_ERROR line (exit 11),
 * not as a stack trace of ct's internals.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand } from '../../src/cli/io.js';
import { repoRoot } from '../support/cli.js';

let base: string;
beforeAll(() => { base = mkdtempSync(join(tmpdir(), 'ct-syserr-')); });
// rm walks by directory handle; Node's rmSync gives up on a path past PATH_MAX.
afterAll(() => { if (base) spawnSync('rm', ['-rf', base]); });

describe('system errors in the CLI', () => {
  it('`ct pack .` from a working directory longer than PATH_MAX: error[IO_ERROR] naming the working directory, exit 11, no stack', () => {
    // 45 levels of 100 characters: 4,500 bytes, past Linux's 4,096. Entered one level at a time
    // (a relative chdir per level, by bash: dash refuses once its idea of the path is too long),
    // since no single path to it can be handed to chdir.
    const level = 'd'.repeat(100);
    const script = `set -e; for i in $(seq 1 45); do mkdir ${level}; cd ${level}; done; cp -r "$1"/. .; exec "$2" "$3" pack . --out out.ctp`;
    const r = spawnSync('bash', ['-c', script, 'bash', join(repoRoot, 'examples', 'hello'), process.execPath, join(repoRoot, 'bin', 'ct.js')], { cwd: base, encoding: 'utf8' });
    expect({ status: r.status, stdout: r.stdout }).toEqual({ status: 11, stdout: '' });
    expect(r.stderr).toMatch(/^error\[IO_ERROR\]: ERANGE: .*uv_cwd \(the working directory: its path is longer than this system allows/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('an errno error from any command is IO_ERROR, a network one NETWORK_ERROR; a plain bug is still reported as one (exit 1)', async () => {
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void out.push(t) };
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', errno: -28, syscall: 'write' });
    expect(await runCommand(io, async () => { throw full; })).toBe(11);
    expect(out.pop()).toBe('error[IO_ERROR]: ENOSPC: no space left on device, write');
    // A connection or a name lookup that failed is a network error (exit 12).
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', errno: -111, syscall: 'connect' });
    expect(await runCommand(io, async () => { throw refused; })).toBe(12);
    expect(out.pop()).toBe('error[NETWORK_ERROR]: connect ECONNREFUSED 127.0.0.1:1');
    const lookup = Object.assign(new Error('getaddrinfo ENOTFOUND no-such-host.invalid'), { code: 'ENOTFOUND', errno: -3008, syscall: 'getaddrinfo' });
    expect(await runCommand(io, async () => { throw lookup; })).toBe(12);
    // An error with a code but no system call is not taken for one.
    expect(await runCommand(io, async () => { throw Object.assign(new TypeError('x is not a function'), { code: 'ERR_X' }); })).toBe(1);
    expect(out.pop()).toMatch(/^error: TypeError: x is not a function/);
  });
});
