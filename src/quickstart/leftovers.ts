/**
 * What an interrupted `ct quickstart` (SIGKILL, a closed terminal's SIGHUP to quickstart alone)
 * leaves running: its children run in their own process groups, so they outlive it. The next run
 * of the same directory would then find the registry's and the server's ports taken, move its own
 * children and deploy beside the old ones (an old server with the same admin key, an old host agent
 * on the same state directory). So each child is recorded in `<dir>/children.json` as it starts
 * (its pid, the kernel's start time of that pid, its argv) and, once no quickstart holds the
 * directory, a later run stops what is left of them: only a process whose pid, start time and
 * /proc/<pid>/cmdline are still those recorded, never another program that got the pid since.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { CtError } from '../core/errors.js';
import type { Child } from './children.js';
import { writePrivate } from './setup.js';

export interface RecordedChild { name: string; pid: number; startTime: string; argv: string[] }

const RECORD_MAX_BYTES = 64 * 1024;
const RECORD_MAX_CHILDREN = 16;
const PROC_READ_MAX = 64 * 1024;

/** `/proc/<pid>/stat`'s state and start time (fields 3 and 22), undefined once there is no such process. */
function procStat(pid: number): { state: string; pgid: number; startTime: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces or parentheses itself.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], pgid: Number(fields[2]), startTime: fields[19] };
  } catch {
    return undefined;
  }
}

function procArgv(pid: number): string[] | undefined {
  try {
    const buf = readFileSync(`/proc/${pid}/cmdline`);
    if (buf.length > PROC_READ_MAX) return undefined;
    return buf.toString('utf8').replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

/** Still the process that was recorded (not exited, not a zombie, not a later process on its pid). */
function stillRunning(c: RecordedChild): boolean {
  const st = procStat(c.pid);
  if (!st || st.state === 'Z' || st.startTime !== c.startTime) return false;
  const argv = procArgv(c.pid);
  return argv !== undefined && argv.length === c.argv.length && argv.every((a, i) => a === c.argv[i]);
}

/** The record of the children of this run, rewritten whole as each one starts. */
export class ChildRecord {
  private readonly children: RecordedChild[] = [];

  constructor(private readonly file: string) {}

  add(child: Child, argv: string[]): void {
    const st = procStat(child.pid);
    // Without a start time a later run could not tell this process from another on its pid: not recorded.
    if (!st) return;
    this.children.push({ name: child.name, pid: child.pid, startTime: st.startTime, argv });
    writePrivate(this.file, `${JSON.stringify({ children: this.children }, null, 2)}\n`);
  }

  /** Every recorded child has been stopped: nothing is left for a later run to stop. */
  clear(): void {
    rmSync(this.file, { force: true });
  }
}

function readRecord(file: string): RecordedChild[] {
  let text: string;
  try {
    if (statSync(file).size > RECORD_MAX_BYTES) throw new Error(`larger than ${RECORD_MAX_BYTES} bytes`);
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CtError('IO_ERROR', `${file}: ${(e as Error).message}; remove it (after stopping what an earlier ct quickstart left running) to go on`, { path: file });
  }
  try {
    const list = (JSON.parse(text) as { children?: unknown }).children;
    if (!Array.isArray(list) || list.length > RECORD_MAX_CHILDREN) throw new Error(`not a list of at most ${RECORD_MAX_CHILDREN} children`);
    return list.map((c: Partial<RecordedChild>) => {
      if (typeof c.name !== 'string' || !Number.isSafeInteger(c.pid) || (c.pid as number) <= 1 || typeof c.startTime !== 'string'
        || !Array.isArray(c.argv) || !c.argv.every((a) => typeof a === 'string')) throw new Error('a child without name, pid, startTime and argv');
      return c as RecordedChild;
    });
  } catch (e) {
    throw new CtError('JSON_INVALID', `${file}: not a record of ct quickstart's children (${(e as Error).message}); remove it (after stopping what an earlier ct quickstart left running) to go on`, { path: file });
  }
}

function signal(c: RecordedChild, sig: NodeJS.Signals): void {
  try {
    // Its process group (the host agent's runc runs in it), as Children.stopAll stops it; a
    // process that left the group it led is signalled alone.
    process.kill(procStat(c.pid)?.pgid === c.pid ? -c.pid : c.pid, sig);
  } catch {
    // already gone
  }
}

async function waitGone(c: RecordedChild, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (stillRunning(c)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return true;
}

/**
 * Stops the children an earlier run of this directory recorded and left running, last started
 * first (the host before the server it talks to), TERM then KILL after `graceMs`; the names and
 * pids of those it stopped. Call it only while holding the directory's lock: a running quickstart's
 * children are not leftovers.
 */
export async function stopLeftovers(file: string, graceMs = 8000): Promise<RecordedChild[]> {
  const stopped: RecordedChild[] = [];
  for (const c of readRecord(file).reverse()) {
    if (!stillRunning(c)) continue;
    signal(c, 'SIGTERM');
    if (!(await waitGone(c, graceMs))) {
      signal(c, 'SIGKILL');
      if (!(await waitGone(c, 2000))) {
        throw new CtError('RUNTIME_FAILED', `the ${c.name} an earlier ct quickstart started (pid ${c.pid}) is still running after SIGKILL: stop it (kill -9 ${c.pid}), then run again`, { pid: c.pid });
      }
    }
    stopped.push(c);
  }
  rmSync(file, { force: true });
  return stopped;
}
