/**
 * The processes `ct quickstart` runs (registry, deploy server, host agent): each in its own process
 * group, so a terminal's Ctrl-C reaches quickstart alone and it stops them in order (the host before
 * the server it talks to, the registry last) instead of all dying at once mid-write. Output goes to
 * `<dir>/logs/<name>.log`; a child that exits early is reported with the tail of its log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtError } from '../core/errors.js';

export interface Child {
  name: string;
  pid: number;
  logFile: string;
  /** Where this start's output begins in logFile (a later run appends to the same file). */
  logStart: number;
  exited: Promise<number | null>;
  /** Set once the process has exited. */
  exitCode(): number | null | undefined;
}

/** The last lines of a child's log, for error messages (bounded). */
export function logTail(file: string, bytes = 2000): string {
  try {
    const text = readFileSync(file, 'utf8');
    return text.slice(-bytes).trim();
  } catch {
    return '';
  }
}

/** What a wait or a start throws once the user asked to stop: not an error (runQuickstart stops what runs). */
export class Interrupted extends Error {}

export class Children {
  private readonly started: { child: Child; proc: ChildProcess }[] = [];
  private interruptedBy: string | undefined;
  private onInterrupt: () => void = () => undefined;
  /** Settles when interrupt() is called: every wait in until() ends then. */
  private readonly interruption = new Promise<undefined>((resolve) => {
    this.onInterrupt = () => resolve(undefined);
  });

  /** `onStart` is told of each child as soon as it runs (quickstart records it for a later run: leftovers.ts). */
  constructor(private readonly logDir: string, private readonly onStart?: (child: Child, argv: string[]) => void) {}

  /**
   * The user asked to stop (Ctrl-C, SIGTERM) while quickstart was still setting up: a wait in hand
   * ends at once, and nothing more is started. Before, the setup went on to its end (minutes:
   * the host's connection, the deployment) before stopping, and a second signal or a KILL meanwhile
   * left the registry, the server and a container running.
   */
  interrupt(why: string): void {
    this.interruptedBy ??= why;
    this.onInterrupt();
  }

  /**
   * Before a step of the set-up that starts no child (pack, sign, push, commit, sync): throws
   * Interrupted once the user asked to stop, so that the step is not taken. Before, only starts
   * and waits looked: a SIGTERM as packing began still signed, pushed, committed and synced.
   */
  before(step: string): void {
    this.throwIfInterrupted(step);
  }

  private throwIfInterrupted(what: string): void {
    if (this.interruptedBy) throw new Interrupted(`${this.interruptedBy}: stopped before ${what}`);
  }

  start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
    this.throwIfInterrupted(`${name} was started`);
    const logFile = join(this.logDir, `${name}.log`);
    const fd = openSync(logFile, 'a');
    const logStart = fstatSync(fd).size;
    let proc: ChildProcess;
    try {
      proc = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    let code: number | null | undefined;
    const exited = new Promise<number | null>((resolve) => {
      proc.on('exit', (c, signal) => {
        code = c ?? (signal ? -1 : null);
        resolve(code);
      });
      proc.on('error', () => {
        code = -1;
        resolve(-1);
      });
    });
    const child: Child = { name, pid: proc.pid ?? -1, logFile, logStart, exited, exitCode: () => code };
    this.started.push({ child, proc });
    if (child.pid > 0) this.onStart?.(child, [command, ...args]);
    return child;
  }

  /**
   * Polls `check` until it returns a value; fails early (with the log tail) if the child exits. Each
   * attempt is bounded by `attemptMs` (and by what is left of `ms`), and given a signal that aborts
   * when it runs out: an answer that never comes — a port another process accepted on and then held
   * — must not keep the loop from trying again, nor from noticing the child's exit or the deadline.
   */
  async until<T>(child: Child, what: string, check: (signal: AbortSignal) => Promise<T | undefined>, ms = 60_000, attemptMs = 10_000): Promise<T> {
    const end = Date.now() + ms;
    // One reaction on the child's exit for the whole wait, not one more per attempt.
    const gone = child.exited.then(() => undefined);
    for (;;) {
      this.throwIfInterrupted(what);
      if (child.exitCode() !== undefined) {
        throw new CtError('RUNTIME_FAILED', `${child.name} exited (code ${child.exitCode()}) while waiting for ${what}; its log (${child.logFile}):\n${logTail(child.logFile)}`, { child: child.name, exitCode: child.exitCode() ?? null });
      }
      const v = await attempt(check, Promise.race([gone, this.interruption]), Math.max(1, Math.min(attemptMs, end - Date.now())));
      this.throwIfInterrupted(what);
      // A check that passed is an answer from a child that is still running: one that exited
      // meanwhile (its port now anyone's) is reported as exited at the top of the loop.
      if (v !== undefined && child.exitCode() === undefined) return v;
      if (child.exitCode() !== undefined) continue;
      if (Date.now() > end) throw new CtError('RUNTIME_FAILED', `timed out waiting for ${what}; ${child.name}'s log (${child.logFile}):\n${logTail(child.logFile)}`, { child: child.name });
      await Promise.race([new Promise((r) => setTimeout(r, 200)), this.interruption]);
    }
  }

  /** Stops every child, last started first: TERM to its process group, KILL after `graceMs`. */
  async stopAll(graceMs = 8000): Promise<void> {
    for (const { child } of [...this.started].reverse()) {
      if (child.exitCode() !== undefined || child.pid < 0) continue;
      signalGroup(child.pid, 'SIGTERM');
      const timer = setTimeout(() => signalGroup(child.pid, 'SIGKILL'), graceMs);
      await child.exited;
      clearTimeout(timer);
    }
    this.started.length = 0;
  }
}

/** One call of `check`: its value, or undefined once it fails (or throws), runs out of time or the child exits (`gone`). */
async function attempt<T>(check: (signal: AbortSignal) => Promise<T | undefined>, gone: Promise<undefined>, ms: number): Promise<T | undefined> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    // Called inside a promise so that a check throwing before it returns one is a failed attempt too.
    const answer = new Promise<T | undefined>((resolve) => resolve(check(ac.signal))).catch(() => undefined);
    return await Promise.race([answer, expired, gone]);
  } finally {
    clearTimeout(timer);
    // A request still in flight is given up, so its socket is not left waiting on the other end.
    ac.abort();
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
