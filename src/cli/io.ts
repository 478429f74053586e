import { CtError, boundText } from '../core/errors.js';
import { exitCodeFor } from '../core/codes.js';
import { terminalText } from '../core/terminal.js';

/** Output sink of a command; tests and the action pass their own. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
}

/**
 * stdout is the command's output, byte for byte (JSON, a bundle digest, an app's log lines);
 * stderr is messages, whose text may come from outside (a hostile registry's error body): shown,
 * never acted on by the terminal.
 */
export const processIo: Io = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(terminalText(t.endsWith('\n') ? t : `${t}\n`)),
};

/**
 * Runs a command body and turns its outcome into an exit code: a number returned by the body,
 * or the code of the CtError it threw (SPEC §2 mapping). Unknown errors are reported, exit 1.
 */
export async function runCommand(io: Io, body: () => Promise<number | void>): Promise<number> {
  try {
    return (await body()) ?? 0;
  } catch (e) {
    if (e instanceof CtError) {
      io.err(`error[${e.code}]: ${e.message}`);
      return exitCodeFor(e.code);
    }
    // An operating-system error that escaped a command's own mapping (a working directory past
    // PATH_MAX makes process.cwd() throw ERANGE, a disk fills up mid-write, a connection refused):
    // the user's problem to fix, said as one line with the call and errno, not a stack trace;
    // NETWORK_ERROR (exit 12) for a failed connection or lookup, IO_ERROR (11) for the rest.
    if (isSystemError(e)) {
      const code = NETWORK_SYSCALLS.has(e.syscall!) || NETWORK_ERRNOS.has(e.code!) ? 'NETWORK_ERROR' : 'IO_ERROR';
      const hint = e.syscall === 'uv_cwd' ? ' (the working directory: its path is longer than this system allows, or it was removed; run from another one)' : '';
      io.err(`error[${code}]: ${boundText(e.message)}${hint}`);
      return exitCodeFor(code);
    }
    io.err(`error: ${boundText((e as Error)?.stack ?? String(e))}`);
    return 1;
  }
}

/** Wraps a commander action so it sets the process exit code from runCommand. */
export function action<A extends unknown[]>(body: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    process.exitCode = await runCommand(processIo, () => body(...args));
  };
}

/** System calls and errnos of a network that failed (SPEC §2: exit 12), not of a file. */
const NETWORK_SYSCALLS = new Set(['connect', 'getaddrinfo', 'getnameinfo', 'queryA', 'queryAaaa']);
const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

/** Node's errors from a system call: an errno code (`ENOENT`, `ERANGE`, …) and the call that failed. */
function isSystemError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).syscall === 'string' && /^E[A-Z0-9]+$/.test(String((e as NodeJS.ErrnoException).code));
}
