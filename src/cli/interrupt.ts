import { rmSync, unlinkSync } from 'node:fs';

/** What ends a command from outside and can be caught (SIGKILL cannot). */
const ENDING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Runs `body` with a set it keeps of the temporary files it is writing; a signal that ends the
 * process meanwhile (Ctrl-C, SIGTERM, the terminal closing) unlinks them first. As git does: the
 * removal is synchronous in the handler, then the signal is raised again under its default action,
 * so the process ends at once and by that signal (130, 143 and 129 in a shell; a shell loop running
 * the command sees it was interrupted and stops). Winding the work down instead could wait out a
 * registry's timeout. What SIGKILL leaves, the command's next run has to clear.
 *
 * The set must hold regular files only, each entered before it is created (src/oci/fetch-temps.ts
 * creates them synchronously for that): unlink removes the one name and follows nothing, where a
 * recursive removal in a directory others can write (-o /tmp/x) can be steered elsewhere. A
 * directory entered by mistake fails to unlink and is left.
 *
 * `scratchDirs` holds directories the command made itself with mkdtemp: those are removed
 * recursively, by path, after the files. Their mode (0700) protects what is inside them: no other
 * user can put a link or a file in, so the removal's descent meets only the command's own files.
 * It does not protect the name: the directory lies beside the output, and where another user may
 * rename entries there (a directory writable by others and not sticky; /tmp is sticky), the
 * directory could be swapped for a link between the removal's check and its descent, which then
 * empties the link's target. Write --out into a directory only you can write in such places.
 */
export async function removingTempsOnSignal<T>(body: (temps: Set<string>, scratchDirs: Set<string>) => Promise<T>): Promise<T> {
  const temps = new Set<string>();
  const scratchDirs = new Set<string>();
  const onSignal = (signal: NodeJS.Signals): void => {
    for (const s of ENDING_SIGNALS) process.off(s, onSignal);
    for (const p of temps) {
      try {
        unlinkSync(p);
      } catch {
        // The process ends all the same; the next run's stale clean-up takes what could not be removed.
      }
    }
    for (const d of scratchDirs) {
      try {
        rmSync(d, { recursive: true, force: true });
      } catch {
        // As above: the process ends all the same.
      }
    }
    process.kill(process.pid, signal);
  };
  for (const s of ENDING_SIGNALS) process.on(s, onSignal);
  try {
    return await body(temps, scratchDirs);
  } finally {
    for (const s of ENDING_SIGNALS) process.off(s, onSignal);
  }
}
