import { spawn, type ChildProcess } from 'node:child_process';
import { CtError } from '../../src/core/errors.js';
import { spawnTool } from './tools.js';

/**
 * Starts detached processes (the per-container supervisors, supervisor.ts) from a small helper
 * process instead of from the agent (#14 target 5). Spawning from Node forks the whole process and
 * blocks its thread until the child has exec'd: from an agent of a few hundred MB that is 20-60 ms
 * of blocked event loop and 7-20 ms of CPU per container start (page tables copied), measured in
 * bench/host-deploy. The launcher is a bare Node process (no modules loaded, tens of MB) started
 * once, on the first start, that spawns what it is told and answers with the pid; the agent only
 * sends a message.
 *
 * What runs is the same: the same binary, argv and working directory, detached (own session) with
 * stdio ignored, the launcher's environment being the agent's. The launcher exits when the agent
 * does (its IPC channel closes); supervisors it started keep running as they would have. If the
 * launcher cannot be started, or has died, the agent spawns directly as before; a request the
 * launcher took and did not answer (it died meanwhile) fails rather than being spawned twice.
 */
const LAUNCHER_SOURCE = `
const { spawn } = require('node:child_process');
process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  let child;
  try {
    child = spawn(m.bin, m.args, { cwd: m.cwd, detached: true, stdio: 'ignore' });
  } catch (e) {
    process.send({ id: m.id, error: String((e && e.message) || e) });
    return;
  }
  if (child.pid === undefined) {
    child.once('error', (e) => process.send({ id: m.id, error: e.message }));
    return;
  }
  child.on('error', () => {});
  child.unref();
  process.send({ id: m.id, pid: child.pid });
});
process.send({ ready: true });
`;

type Reply = { ready: true } | { id: number; pid: number } | { id: number; error: string };

export class Launcher {
  private child?: ChildProcess;
  private ready?: Promise<boolean>;
  private readonly pending = new Map<number, { resolve: (pid: number) => void; reject: (e: unknown) => void }>();
  private nextId = 0;
  /** Processes started through the launcher (tests count them). */
  launched = 0;

  /** How long a request may wait for the launcher's answer (its spawn takes milliseconds). */
  constructor(private readonly answerMs = 10_000) {}

  /**
   * Starts `bin args` detached in `cwd` with stdio ignored; the pid. Through the launcher once it
   * was warmed (the agent; started again if it died), directly otherwise (a one-shot `ct run` or
   * `ct host start` is a small process: starting a launcher would cost it more than the fork).
   */
  async spawnDetached(bin: string, args: readonly string[], cwd: string): Promise<number | undefined> {
    const child = this.ready && (await this.start()) ? this.child : undefined;
    if (!child || !usable(child)) {
      const direct = spawnTool(bin, args, { detached: true, stdio: 'ignore', cwd });
      direct.unref();
      // A spawn that fails (its directory removed meanwhile) says so as an 'error' event: an
      // exception that ended the process when nothing listened.
      return new Promise<number | undefined>((resolve, reject) => {
        direct.once('spawn', () => resolve(direct.pid));
        direct.once('error', (e) => reject(new CtError('RUNTIME_FAILED', `${bin} could not be started in ${cwd}: ${e.message}`, { bin })));
      });
    }
    const id = this.nextId++;
    const pid = await new Promise<number>((resolve, reject) => {
      // A launcher that does not answer (stopped, starved) is killed, so that it cannot start the
      // process later behind the caller's back, and the start fails.
      const timer = setTimeout(() => {
        if (!this.pending.has(id)) return;
        child.kill('SIGKILL');
        this.pending.delete(id);
        this.release();
        // It may have started the process before it stalled: the caller finds out (runc.ts).
        reject(new CtError('RUNTIME_FAILED', `the launcher did not answer within ${this.answerMs} ms and was stopped; ${bin} may have started`, { bin, mayHaveStarted: true }));
      }, this.answerMs);
      timer.unref();
      this.pending.set(id, {
        resolve: (p) => (clearTimeout(timer), resolve(p)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      this.hold();
      child.send({ id, bin, args, cwd }, (e) => {
        if (e && this.pending.delete(id)) {
          this.release();
          reject(new CtError('RUNTIME_FAILED', `the launcher could not be asked to start ${bin}: ${e.message}`, { bin }));
        }
      });
    });
    this.launched++;
    return pid;
  }

  /** Starts the launcher ahead of the first container start (an agent at start-up). */
  warm(): void {
    void this.start();
  }

  /** Stops the launcher (tests simulate its death with it); a later spawn starts another. */
  stop(): void {
    this.child?.kill('SIGKILL');
  }

  private start(): Promise<boolean> {
    if (this.ready && this.child && usable(this.child)) return this.ready;
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, ['-e', LAUNCHER_SOURCE], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: process.env });
    } catch {
      return (this.ready = Promise.resolve(false));
    }
    this.child = child;
    this.ready = new Promise<boolean>((resolve) => {
      child.on('message', (m: Reply) => {
        if ('ready' in m) return resolve(true);
        const t = this.pending.get(m.id);
        if (!t) return;
        this.pending.delete(m.id);
        this.release();
        if ('pid' in m) t.resolve(m.pid);
        else t.reject(new CtError('RUNTIME_FAILED', `could not start a supervisor: ${String(m.error).slice(0, 300)}`, {}));
      });
      const gone = (): void => {
        resolve(false);
        if (this.child === child) this.child = undefined;
        const lost = [...this.pending.values()];
        this.pending.clear();
        // Taken but not answered: it may have started, so it is not started again here.
        for (const t of lost) t.reject(new CtError('RUNTIME_FAILED', 'the launcher process ended before answering; the supervisor may have started', { mayHaveStarted: true }));
        this.holds = 0;
      };
      child.on('error', gone);
      child.on('exit', gone);
      child.on('disconnect', gone);
    });
    this.hold();
    void this.ready.then(() => this.release());
    return this.ready;
  }

  /** The launcher keeps the agent alive only while a request is under way. */
  private holds = 0;
  private hold(): void {
    if (this.holds++ === 0) {
      this.child?.ref();
      this.child?.channel?.ref();
    }
  }
  private release(): void {
    if (this.holds > 0 && --this.holds === 0) {
      this.child?.unref();
      this.child?.channel?.unref();
    }
  }
}

/** Connected and not known to be ending (killed by us, or its exit already seen). */
function usable(c: ChildProcess): boolean {
  return c.connected && !c.killed && c.exitCode === null && c.signalCode === null;
}

/** The one launcher of this process (every RuncRuntime shares it). */
export const launcher = new Launcher();
