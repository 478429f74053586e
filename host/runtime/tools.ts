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
  /** Killed when stdout or stderr passed opts.maxOutputBytes (what it holds is the last part). */
  overflowed?: boolean;
}

/**
 * What a tool may print on one stream before it is killed: far above what any tool of ours prints
 * (`iptables-save` on a node with 250,000 kube-proxy rules prints ~30 MB), bounding only a runaway.
 */
export const MAX_TOOL_OUTPUT = 256 * 1024 * 1024;

/**
 * One stream's output, bounded: only its last `keep` bytes are held, and past `max` bytes in all
 * the tool is killed (a command that prints without end, e.g. an exec health check running `yes`,
 * grew a string until V8 threw in the stream's handler and the agent exited).
 */
class Bounded {
  private chunks: Buffer[] = [];
  private held = 0;
  private seen = 0;
  over = false;
  constructor(private readonly keep: number, private readonly max: number, private readonly onOver: () => void) {}

  add(d: Buffer): void {
    this.seen += d.length;
    this.chunks.push(d);
    this.held += d.length;
    while (this.held - this.chunks[0]!.length >= this.keep) this.held -= this.chunks.shift()!.length;
    if (this.seen > this.max && !this.over) {
      this.over = true;
      this.onOver();
    }
  }

  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.keep)).toString();
  }
}

export function runTool(
  bin: string,
  args: readonly string[],
  opts: {
    input?: string; timeoutMs?: number; cwd?: string; env?: NodeJS.ProcessEnv;
    /** Bytes of one stream after which the tool is killed (default MAX_TOOL_OUTPUT). */
    maxOutputBytes?: number;
    /** The last bytes of each stream kept for the result (default all, up to maxOutputBytes). */
    keepOutputBytes?: number;
  } = {},
): Promise<ToolResult> {
  return new Promise((resolve) => {
    const child = spawn(bin, args, { cwd: opts.cwd, env: opts.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    // The child is killed (timeout, output past its bound); its result is given even if a process
    // it started keeps the output pipes open (a hung or flooding command under `runc exec`):
    // 'close' would never come, and the agent would go on reading a flood.
    let givingUp = false;
    let timedOut = false;
    const giveUp = (timeout: boolean) => {
      if (timeout) timedOut = true;
      child.kill('SIGKILL');
      if (givingUp) return;
      givingUp = true;
      setTimeout(() => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        child.stdout?.destroy();
        child.stderr?.destroy();
        resolve({ code: null, signal: 'SIGKILL', stdout: out.text(), stderr: err.text(), missing: false, ...(timedOut ? { timedOut: true } : {}), ...overflowed() });
      }, 500).unref();
    };
    const max = opts.maxOutputBytes ?? MAX_TOOL_OUTPUT;
    const keep = Math.min(max, opts.keepOutputBytes ?? max);
    const out = new Bounded(keep, max, () => giveUp(false));
    const err = new Bounded(keep, max, () => giveUp(false));
    const overflowed = () => (out.over || err.over ? { overflowed: true } : {});
    if (opts.timeoutMs) timer = setTimeout(() => giveUp(true), opts.timeoutMs);
    child.stdout!.on('data', (d: Buffer) => out.add(d));
    child.stderr!.on('data', (d: Buffer) => err.add(d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({ code: null, signal: null, stdout: out.text(), stderr: e.message, missing: e.code === 'ENOENT' });
    });
    child.on('close', (code, signal) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout: out.text(), stderr: err.text(), missing: false, ...(timedOut ? { timedOut: true } : {}), ...overflowed() });
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
