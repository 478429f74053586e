import { readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CONTAINER_ID_RE } from '../runtime/state.js';

/**
 * A `ct run`'s name is claimed by a directory `run-names/<name>` under its state directory, made
 * before anything of the run exists and removed last (run.ts). The claim names its owner (pid and
 * the process's start time, so a reused pid is not taken for it): `ct host` refuses to start or
 * remove a container a live run watches, a refused `ct run` says whether the holder lives, and
 * `ct host rm` frees the name of a run killed with SIGKILL. A claim is never taken over
 * automatically: two runs racing to clear one would both win (a rename race), and the namespace
 * of a container is named after it on the whole machine.
 */
const OWNER = 'owner.json';

interface Owner { pid: number; start: string }

/** The kernel's start time of a process (clock ticks since boot, /proc/<pid>/stat field 22), or undefined. */
function startOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 2 (comm) is in parentheses and may hold spaces and parentheses: count after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export type ClaimState = { state: 'alive'; pid: number } | { state: 'gone' } | { state: 'unknown' };

/** Whether the run that holds a claim still runs. `unknown`: no readable owner (an older ct run, or one between its mkdir and its write). */
export async function claimState(claim: string): Promise<ClaimState> {
  let owner: Owner;
  try {
    owner = JSON.parse(await readFile(join(claim, OWNER), 'utf8')) as Owner;
  } catch {
    return { state: 'unknown' };
  }
  // An empty start time: /proc was not readable by the owner (another pid namespace): not judged.
  if (!Number.isSafeInteger(owner?.pid) || owner.pid <= 0 || typeof owner.start !== 'string' || owner.start === '') return { state: 'unknown' };
  return startOf(owner.pid) === owner.start ? { state: 'alive', pid: owner.pid } : { state: 'gone' };
}

/** Claims `name` for this process; false when it is held (by anyone, alive or not). */
export async function claimName(claim: string): Promise<boolean> {
  try {
    await mkdir(claim, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  await writeFile(join(claim, OWNER), JSON.stringify({ pid: process.pid, start: startOf(process.pid) ?? '' }), { mode: 0o600 });
  return true;
}

/**
 * The names whose `ct run` was killed before its container existed (SIGKILL while unpacking or
 * setting its network up): a claim whose owner is gone, and no container of that name. Nothing
 * but `ct host rm NAME` clears them, and a run's random name is nowhere else to be seen: `ct host
 * ps` lists them.
 */
export async function killedRunNames(stateDir: string, hasContainer: (name: string) => boolean): Promise<string[]> {
  const dir = join(stateDir, 'run-names');
  const out: string[] = [];
  for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
    // Only names a run can claim (a container id): anything else there was not made by ct run, and is not printed.
    if (!CONTAINER_ID_RE.test(name)) continue;
    if (!hasContainer(name) && (await claimState(join(dir, name))).state === 'gone') out.push(name);
  }
  return out;
}
