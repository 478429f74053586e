import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The host tests need root, runc, bpftrace and a static busybox (CI installs them: .ci/run).
 * A missing tool fails the suite with a message; it never skips it.
 */
export function requireHostTools(): void {
  if (process.getuid?.() !== 0) throw new Error('host tests run as root (CI does); this process is not root');
  for (const bin of ['runc', 'bpftrace']) {
    try {
      execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'pipe' });
    } catch {
      throw new Error(`${bin} is not installed (apt ${bin})`);
    }
  }
}

export const BUSYBOX = '/bin/busybox';

/**
 * A tiny root filesystem: the statically linked busybox (Debian busybox-static) and applet links.
 * `extra` copies busybox under other names (a binary the exec rule does not allow).
 */
export async function makeRootfs(extra: string[] = []): Promise<{ base: string; rootfs: string }> {
  const base = await mkdtemp(join(tmpdir(), 'ct-host-'));
  const rootfs = join(base, 'rootfs');
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  // As in real images: runc gives a tmpfs the mode of the directory it covers, when there is one.
  await mkdir(join(rootfs, 'tmp'));
  await chmod(join(rootfs, 'tmp'), 0o1777);
  await copyFile(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  for (const a of ['sh', 'mkdir', 'echo', 'cat', 'ls', 'sleep', 'true', 'id', 'grep', 'unshare', 'rmdir']) {
    await symlink('busybox', join(rootfs, 'bin', a));
  }
  for (const name of extra) await copyFile(BUSYBOX, join(rootfs, 'bin', name));
  return { base, rootfs };
}

export const DIGEST = `sha256:${'ab'.repeat(32)}`;

/** An agent process the test kills at a chosen moment (test/host-agent, test/host-network replace crashes). */
export interface KillableAgent {
  /** What it wrote to stderr so far (an agent that got past the moment says so there). */
  readonly stderr: string;
  /** SIGKILL (as a crash), resolved once it has exited. */
  kill(): Promise<void>;
}

/**
 * Runs `node script` until it writes the file `marker` (or exits, or a minute passes): the moment
 * the test wants the agent killed at. Whether the marker came is for the caller to check.
 */
export async function runUntilMarker(script: string, marker: string): Promise<KillableAgent> {
  const child = spawn(process.execPath, [script], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  for (let i = 0; i < 1200 && !existsSync(marker) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
  return {
    get stderr() {
      return stderr;
    },
    async kill() {
      child.kill('SIGKILL');
      await new Promise((r) => (child.exitCode === null && child.signalCode === null ? child.once('exit', r) : r(undefined)));
    },
  };
}
