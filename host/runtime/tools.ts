import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';

/**
 * The host's one door to other programs (runc, bpftrace, apparmor_parser): every process the host
 * starts goes through here, through runc.ts or through launcher.ts (container supervisors), so that
 * what runs on a host is easy to audit.
 */
export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The binary was not found. */
  missing: boolean;
  /** Killed at opts.timeoutMs. */
  timedOut?: boolean;
}

export function runTool(
  bin: string,
  args: readonly string[],
  opts: { input?: string; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let settled = false;
    // On timeout the child is killed; its result is given even if a process it started keeps the
    // output pipes open (a hung command under `runc exec`): 'close' would never come.
    const timer = opts.timeoutMs
      ? setTimeout(() => {
        child.kill('SIGKILL');
        setTimeout(() => {
          if (settled) return;
          settled = true;
          child.stdout?.destroy();
          child.stderr?.destroy();
          resolve({ code: null, signal: 'SIGKILL', stdout, stderr, missing: false, timedOut: true });
        }, 500).unref();
      }, opts.timeoutMs)
      : undefined;
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({ code: null, signal: null, stdout, stderr: e.message, missing: e.code === 'ENOENT' });
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, missing: false, timedOut: signal === 'SIGKILL' && opts.timeoutMs !== undefined ? true : undefined });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}

/** A long-running tool (bpftrace, a supervisor); the caller owns the child. */
export function spawnTool(bin: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return spawn(bin, args, opts);
}

/** The absolute path of an executable on PATH, or undefined. */
export async function findOnPath(bin: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    if (!dir) continue;
    const path = join(dir, bin);
    if (await access(path, constants.X_OK).then(() => true, () => false)) return path;
  }
  return undefined;
}
