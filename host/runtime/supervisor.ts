/**
 * The per-container supervisor: a small detached process (own session) that runs `runc run` in the
 * foreground, so that runc stays the container's subreaper and returns its exit status. The
 * container's stdout/stderr go to the log file, runc's own log (JSON) to a second file, and the
 * exit status is written to the exit file. The agent may die (even
 * kill -9) meanwhile: the container keeps running and the exit code is recovered from the file
 * (runc.ts state()).
 *
 * It is a POSIX sh script rather than a Node program: it lives as long as the container, and sh
 * starts in about a millisecond where Node takes a few hundred on a busy host (bench/host.bench.ts).
 * Every value is a positional parameter ("$1"…), never spliced into the script text.
 */
export const SUPERVISOR_SCRIPT = [
  "trap '' HUP INT",
  '"$1" --root "$2" --log "$3" --log-format json run --bundle "$4" "$5" </dev/null >>"$6" 2>&1',
  'code=$?',
  // One short write by a shell builtin: a reader sees the whole line or nothing parsable (and
  // retries). The time is the file's mtime: no `date`/`mv` processes on the way to the exit code.
  'printf \'{"exitCode":%d}\\n\' "$code" >"$7"',
].join('\n');

export interface SupervisorArgs {
  runc: string;
  root: string;
  /** runc's own log (JSON lines), kept apart from the container's output. */
  runcLog: string;
  bundle: string;
  id: string;
  log: string;
  exitFile: string;
}

/** argv for `sh -c SUPERVISOR_SCRIPT sh …`, in the script's positional order. */
export function supervisorArgv(a: SupervisorArgs): string[] {
  return ['-c', SUPERVISOR_SCRIPT, 'ct-supervisor', a.runc, a.root, a.runcLog, a.bundle, a.id, a.log, a.exitFile];
}

export interface ExitRecord {
  /** runc's exit status: the app's, or 128+signal when a signal ended it. */
  exitCode: number | null;
  /** The exit file's mtime. */
  finishedAt: string;
}
