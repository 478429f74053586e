import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A `ct run`'s name is claimed by a directory `run-names/<name>` under its state directory, made
 * before anything of the run exists and removed last (run.ts). The claim names its owner (pid and
 * the process's start time, so a reused pid is not taken for it): a claim whose owner is gone was
 * left by a run killed with SIGKILL, and is taken over — atomically, by renaming it away and
 * claiming the name afresh, so that two runs finding it at once cannot both clean up and both run.
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
  if (!Number.isSafeInteger(owner?.pid) || owner.pid <= 0 || typeof owner.start !== 'string') return { state: 'unknown' };
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
 * Takes over a claim whose owner is gone: it is renamed away (one of several racing takers wins)
 * and the name claimed afresh. True when this process now holds the name; the caller then clears
 * what the killed run left under it before going on.
 */
export async function takeOverStaleClaim(claim: string): Promise<boolean> {
  if ((await claimState(claim)).state !== 'gone') return false;
  const aside = `${claim}.stale-${randomBytes(4).toString('hex')}`;
  try {
    await rename(claim, aside);
  } catch {
    return false; // another run took it first
  }
  await rm(aside, { recursive: true, force: true });
  return claimName(claim);
}

/** The names claimed under `dir` (run-names/), without the directories takeOverStaleClaim sets aside. */
export async function claimedNames(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => !n.includes('.stale-'));
}
