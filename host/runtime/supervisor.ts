/**
 * The per-container supervisor: a small detached process (own session) that runs `runc run` in the
 * foreground, so that runc stays the container's subreaper and returns its exit status. The
 * container's stdout and stderr go through two pipes to two `multilog` processes (daemontools),
 * one per stream, each writing its own size-capped, rotated directory of timestamped lines
 * (host/logs): the streams stay apart, the cap holds whether the agent runs or not, and nothing
 * of the app's output is lost to a rotation. runc's own log (JSON) goes to a file of its own, and
 * the exit status to the exit file once both loggers have written everything. runc writes the
 * container's pid to the pid file (${11}) once the app's process runs: the agent waits for that
 * file instead of asking `runc state` (a process spawn of ~20-40 ms) over and over. The agent may die
 * (even kill -9) meanwhile: the container keeps running and the exit code is recovered from the
 * file (runc.ts state()).
 *
 * It is a POSIX sh script rather than a Node program: it lives as long as the container, and sh
 * (like multilog) starts in about a millisecond where Node takes a few hundred on a busy host
 * (bench/host.bench.ts). Every value is a positional parameter ("$1"…), never spliced into the
 * script text.
 */
export const SUPERVISOR_SCRIPT = [
  "trap '' HUP INT",
  // $6 is the container's log directory: <stream>.pipe feeds multilog writing <stream>/.
  'rm -f "$6/stdout.pipe" "$6/stderr.pipe"',
  'if mkfifo -m 600 "$6/stdout.pipe" "$6/stderr.pipe"; then',
  '  "$8" t "s$9" "n${10}" "$6/stdout" <"$6/stdout.pipe" &',
  '  "$8" t "s$9" "n${10}" "$6/stderr" <"$6/stderr.pipe" &',
  // Opening a pipe for writing waits for its reader: both loggers are there before runc starts.
  '  "$1" --root "$2" --log "$3" --log-format json run --bundle "$4" --pid-file "${11}" "$5" </dev/null >"$6/stdout.pipe" 2>"$6/stderr.pipe"',
  '  code=$?',
  // The loggers end at the pipes' end of file, after writing the last lines.
  '  wait',
  '  rm -f "$6/stdout.pipe" "$6/stderr.pipe"',
  'else',
  '  code=125',
  'fi',
  // One short write by a shell builtin: a reader sees the whole line or nothing parsable (and
  // retries). The time is the file's mtime: no `date`/`mv` processes on the way to the exit code.
  // Its own pid: a supervisor of a previous run still draining its loggers when the container was
  // started again writes here late, and must not pass for the new run's (runc.ts readExit).
  'printf \'{"exitCode":%d,"supervisor":%d}\\n\' "$code" "$$" >"$7"',
].join('\n');

/** Where a container's output goes and how much of it is kept. */
export interface LogLimits {
  /** Bytes per file before multilog rotates it (4096-16777215, multilog's range). */
  maxBytes: number;
  /** Files kept per stream, the one being written included (2-1000). */
  files: number;
}

/** 10 MB × 2 files per stream unless the host says otherwise (`ct host run --log-max-size/--log-max-files`). */
export const DEFAULT_LOG_LIMITS: LogLimits = { maxBytes: 10 * 1024 * 1024, files: 2 };

export interface SupervisorArgs {
  runc: string;
  root: string;
  /** runc's own log (JSON lines), kept apart from the container's output. */
  runcLog: string;
  bundle: string;
  id: string;
  /** The container's log directory (stdout/ and stderr/ under it). */
  logDir: string;
  exitFile: string;
  /** runc's --pid-file: written (atomically, by rename) once the container's process runs. */
  pidFile: string;
  multilog: string;
  limits: LogLimits;
}

/** argv for `sh -c SUPERVISOR_SCRIPT sh …`, in the script's positional order. */
export function supervisorArgv(a: SupervisorArgs): string[] {
  return ['-c', SUPERVISOR_SCRIPT, 'ct-supervisor', a.runc, a.root, a.runcLog, a.bundle, a.id, a.logDir, a.exitFile, a.multilog, String(a.limits.maxBytes), String(a.limits.files), a.pidFile];
}

export interface ExitRecord {
  /** runc's exit status: the app's, or 128+signal when a signal ended it. */
  exitCode: number | null;
  /** The exit file's mtime. */
  finishedAt: string;
}
