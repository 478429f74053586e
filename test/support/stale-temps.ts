import { chown, lutimes, mkdir, readdir, readFile, symlink, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** What plantStaleTemps put beside a destination. */
export interface PlantedTemps {
  /** A stale regular file of this user, named as a temporary of the destination: to be removed. */
  ours: string;
  /** Named as temporaries of the destination and just as old, but not ours to unlink: to be kept. */
  kept: string[];
  /** What the symlinks and the directory's inner symlink point to: must come through intact. */
  victim: string;
  /** Whether one of `kept` is another user's file (only root can make one). */
  otherUser: boolean;
}

/**
 * Beside `dest`, entries named as its temporaries (`.<name>.<12 hex>.tmp`), all last modified
 * `ageMs` ago, as a user who can write that directory (-o /tmp/x) could plant them: a directory
 * (holding a symlink into the victim directory), symlinks to the victim directory and to a file in
 * it, another user's file (when running as root), and one stale regular file of ours. Also an
 * equally old temporary of another destination. A clean-up for directories others can write must
 * remove exactly `ours`.
 */
export async function plantStaleTemps(dest: string, ageMs: number): Promise<PlantedTemps> {
  const dir = dirname(dest);
  const name = basename(dest);
  const temp = (hex: string): string => join(dir, `.${name}.${hex.repeat(12)}.tmp`);
  const victim = join(dir, `victim-of-${name}`);
  await mkdir(victim);
  await writeFile(join(victim, 'keep'), 'victim');
  const then = new Date(Date.now() - ageMs);

  const ours = temp('a');
  await writeFile(ours, 'half-written');
  const asDir = temp('b');
  await mkdir(join(asDir, 'a'), { recursive: true });
  await symlink(victim, join(asDir, 'a', 'd'));
  const toDir = temp('c');
  await symlink(victim, toDir);
  const toFile = temp('d');
  await symlink(join(victim, 'keep'), toFile);
  const kept = [asDir, toDir, toFile];
  const otherUser = process.getuid?.() === 0;
  if (otherUser) {
    const theirs = temp('e');
    await writeFile(theirs, 'theirs');
    await chown(theirs, 4242, 4242);
    kept.push(theirs);
  }
  const otherDest = join(dir, `.other-than-${name}.ffffffffffff.tmp`);
  await writeFile(otherDest, 'x');
  kept.push(otherDest);

  for (const p of [ours, asDir, otherDest, ...(otherUser ? [temp('e')] : [])]) await utimes(p, then, then);
  // A symlink's own times: what lstat (and so the stale rule) sees.
  for (const p of [toDir, toFile]) await lutimes(p, then, then);
  return { ours, kept, victim, otherUser };
}

/** The victim directory as plantStaleTemps made it. */
export async function victimIntact(p: PlantedTemps): Promise<boolean> {
  return (await readdir(p.victim)).join() === 'keep' && (await readFile(join(p.victim, 'keep'), 'utf8')) === 'victim';
}
