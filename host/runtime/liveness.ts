import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Container liveness without starting a process. `runc state` is a child process (tens of ms from
 * a large Node process, far more on a loaded host); that a container still runs can be read from
 * files instead: the init process's cgroup (/proc/<pid>/cgroup: the pid is still the container's,
 * not a reused one) and the cgroup's freezer (runc.ts reads the supervisor's exit file first).
 * Whatever these cannot establish exactly, the caller asks runc.
 */

/**
 * `running` when process `pid` exists and sits in exactly the cgroup `cgroupsPath` (its cgroup v2
 * line; v2 mounted at `unified`), which is not frozen: then it is the container's init, and it runs.
 * Undefined when that cannot be told from files (no cgroup v2 path, the process gone or elsewhere,
 * a freeze asked for or under way: runc tells paused from freezing).
 */
export async function initRunning(pid: number | null, cgroupsPath: string | null, unified: string | undefined): Promise<'running' | undefined> {
  if (!pid || !cgroupsPath || !unified) return undefined;
  const groups = (await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '')).split('\n');
  if (!groups.includes(`0::${cgroupsPath}`)) return undefined;
  // An init that has exited and waits for runc to reap it (zombie, dead) no longer runs.
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  if (state === '' || state === 'Z' || state === 'X' || state === 'x') return undefined;
  // On a hybrid hierarchy runc freezes with the v1 freezer (mounted where systemd puts it), on
  // a unified one with cgroup.freeze: either must say "not frozen", or runc is asked.
  const v1 = groups.map((l) => /^\d+:freezer:(\/.*)$/.exec(l)?.[1]).find((x) => x !== undefined);
  if (v1 !== undefined) {
    const st = await readFile(join('/sys/fs/cgroup/freezer', v1, 'freezer.state'), 'utf8').catch(() => '');
    return st.trim() === 'THAWED' ? 'running' : undefined;
  }
  const freeze = await readFile(join(unified, cgroupsPath, 'cgroup.freeze'), 'utf8').catch(() => '');
  return freeze.trim() === '0' ? 'running' : undefined;
}
