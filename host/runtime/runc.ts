import { readFileSync } from 'node:fs';
import { mkdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { writeFileAtomic } from '../../src/core/fs.js';
import type { OciConfig } from '../enforce/types.js';
import { CGROUP_RE, CONTAINER_ID_RE, ContainerStore, type ContainerRecord, type ContainerStatus } from './state.js';
import { DEFAULT_LOG_LIMITS, supervisorArgv, type ExitRecord, type LogLimits } from './supervisor.js';
import { findOnPath, runTool } from './tools.js';
import { launcher } from './launcher.js';
import { readLogs, renderText, type LogPage, type ReadOptions } from '../logs/read.js';
import { oomKilledSince } from '../resources/oom.js';
import { initRunning } from './liveness.js';
import { scopedName, stateScope } from './scope.js';
import type { KillSignal } from '../../src/protocol/messages.js';


/** How long wait() gives a live supervisor to write the exit file after runc has returned. */
const EXIT_FILE_WAIT_MS = 10_000;
/** How long a previous run's supervisor has to end on TERM, then on KILL, before a new run starts (endPreviousSupervisor). */
const PREVIOUS_SUPERVISOR_TERM_MS = 2_000;
const PREVIOUS_SUPERVISOR_KILL_MS = 2_000;
/** Bytes an exec (health check) may print on one stream before it is killed and fails. */
export const EXEC_OUTPUT_MAX = 64 * 1024 * 1024;

export interface RuncOptions {
  /** Host state directory: runc's --root, bundles, logs, exit files and the SQLite state. */
  stateDir: string;
  runc?: string;
  /** Where the cgroup v2 hierarchy is mounted (facts.cgroup.unifiedMount), to pre-create cgroups for the monitor. */
  unifiedCgroupMount?: string;
  /** Runs before each start (first run, start, restart), given the runc id: host/network sets a suspended container's network up again. */
  beforeStart?: (id: string) => Promise<void>;
  /** Size cap and rotation of each container's stdout and stderr (default 10 MB × 2 files each). */
  logLimits?: LogLimits;
  /** daemontools' multilog (found on PATH by default). */
  multilog?: string;
}

export interface CreateOptions {
  appName?: string;
  imageDigest?: string;
  /** The new container of a side-by-side replace: the id of the app's container it will replace. */
  replaces?: string;
}

interface RuncState {
  id: string;
  pid: number;
  status: 'creating' | 'created' | 'running' | 'paused' | 'stopped';
}

/**
 * Created and never asked to start: runc holds nothing to ask about. A created container whose
 * start was attempted (it failed or timed out) may have been started by its supervisor anyway.
 */
function neverStarted(rec: ContainerRecord): boolean {
  return rec.status === 'created' && !rec.startedAt;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function checkId(id: string): void {
  if (!CONTAINER_ID_RE.test(id)) throw new CtError('USAGE', `container id ${JSON.stringify(id)} must match ${CONTAINER_ID_RE}`, { id });
}

/**
 * The only code that starts container processes (STYLE: host/runtime). Each container is an OCI
 * bundle under <stateDir>/containers/<id>; runc keeps its own state under <stateDir>/runc; a
 * detached supervisor per container (supervisor.ts) owns `runc run`, the log and the exit code.
 */
export class RuncRuntime {
  readonly stateDir: string;
  readonly root: string;
  readonly store: ContainerStore;
  /** This state directory's mark on machine-wide names (scope.ts). */
  readonly scope: string;
  private readonly runc: string;
  private readonly unified?: string;
  private readonly beforeStart?: (id: string) => Promise<void>;
  private readonly logLimits: LogLimits;
  private readonly multilog: string;

  private constructor(opts: RuncOptions & { multilog: string }, store: ContainerStore) {
    // Absolute: each supervisor runs from its bundle directory, where a relative path names nothing.
    this.stateDir = resolve(opts.stateDir);
    this.root = join(this.stateDir, 'runc');
    this.scope = stateScope(this.stateDir);
    this.runc = opts.runc ?? 'runc';
    this.unified = opts.unifiedCgroupMount;
    this.beforeStart = opts.beforeStart;
    this.logLimits = checkLogLimits(opts.logLimits ?? DEFAULT_LOG_LIMITS);
    this.multilog = opts.multilog;
    this.store = store;
  }

  static async open(given: RuncOptions): Promise<RuncRuntime> {
    const opts = { ...given, stateDir: resolve(given.stateDir) };
    const multilog = opts.multilog ?? (await findOnPath('multilog'));
    if (!multilog) throw new CtError('HOST_TOOL_MISSING', 'multilog (Debian package daemontools) is not installed: it writes the containers\' logs', { tool: 'multilog' });
    await mkdir(join(opts.stateDir, 'containers'), { recursive: true, mode: 0o700 });
    await mkdir(join(opts.stateDir, 'runc'), { recursive: true, mode: 0o700 });
    return new RuncRuntime({ ...opts, multilog }, new ContainerStore(join(opts.stateDir, 'state.db')));
  }

  close(): void {
    this.store.close();
  }

  private dir(id: string): string {
    return join(this.stateDir, 'containers', id);
  }

  /** The id runc knows the container by (its own id unless it replaced another side by side). */
  private rid(id: string): string {
    return this.store.get(id)?.runcId ?? id;
  }

  private exitFile(id: string): string {
    return join(this.dir(this.rid(id)), 'exit.json');
  }

  private pidFile(id: string): string {
    return join(this.dir(this.rid(id)), 'container.pid');
  }

  private runcLog(id: string): string {
    return join(this.dir(this.rid(id)), 'runc.log');
  }

  /** The cgroup a new container of this state directory gets (no other state directory's container shares it). */
  cgroupsPathFor(id: string): string {
    return `/cerro-torre/${scopedName(this.scope, id)}`;
  }

  /** Directory of the container's cgroup in the v2 hierarchy (what the monitor filters on). */
  cgroupDir(id: string): string | undefined {
    const rec = this.store.get(id);
    if (!rec?.cgroupsPath || !this.unified) return undefined;
    return join(this.unified, rec.cgroupsPath);
  }

  private async runcCmd(args: string[], timeoutMs = 30000): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const r = await runTool(this.runc, ['--root', this.root, ...args], { timeoutMs });
    if (r.missing) throw new CtError('HOST_TOOL_MISSING', `${this.runc} is not installed`, { tool: this.runc });
    return r;
  }

  /**
   * Writes the OCI bundle (config.json) and records the container as created. When a cgroup path
   * is set, its v2 directory is created now, so that the monitor can resolve its id and attach
   * before the first instruction of the app runs.
   */
  async create(id: string, config: OciConfig, opts: CreateOptions = {}): Promise<ContainerRecord> {
    checkId(id);
    // Before anything is touched: a refused config leaves what was there as it was.
    const cgroupsPath = config.linux.cgroupsPath ?? null;
    if (cgroupsPath !== null && !CGROUP_RE.test(cgroupsPath)) throw new CtError('USAGE', `container ${id}: cgroupsPath ${JSON.stringify(cgroupsPath).slice(0, 200)} must match ${CGROUP_RE}`, { id });
    const existing = this.store.get(id);
    if (existing && existing.status !== 'removed') throw new CtError('USAGE', `container ${id} already exists`, { id });
    if (existing) this.store.forget(id);
    const dir = this.dir(id);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`, 0o600);
    await mkdir(join(dir, 'logs'), { mode: 0o700 });
    if (cgroupsPath && this.unified) await mkdir(join(this.unified, cgroupsPath), { recursive: true });
    return this.store.insert({ id, bundleDir: dir, logPath: join(dir, 'logs'), cgroupsPath, appName: opts.appName ?? null, imageDigest: opts.imageDigest ?? null, replaces: opts.replaces });
  }

  /**
   * Starts a created container under its supervisor and waits until runc reports it running (or
   * it has already exited). A start that runc refused (bad profile, missing binary) is an error
   * with runc's message; an app that ran and exited is not.
   */
  async start(id: string, timeoutMs = 15000): Promise<ContainerRecord> {
    const rec = this.mustGet(id);
    if (rec.status !== 'created') throw new CtError('USAGE', `container ${id} is ${rec.status}, not created`, { id, status: rec.status });
    await this.beforeStart?.(rec.runcId);
    await this.endPreviousSupervisor(rec);
    await rm(this.exitFile(id), { force: true });
    await rm(this.pidFile(id), { force: true });
    // runc.log is how start() tells "runc refused" from "the app exited": one run's log at a time.
    await rm(this.runcLog(id), { force: true });
    const argv = supervisorArgv({
      runc: this.runc, root: this.root, runcLog: this.runcLog(id), bundle: rec.bundleDir, id: rec.runcId, logDir: rec.logPath, exitFile: this.exitFile(id), pidFile: this.pidFile(id),
      multilog: this.multilog, limits: this.logLimits,
    });
    // Through the launcher (launcher.ts): no fork of this large process per container start.
    const startedAt = new Date().toISOString();
    let supervisorPid: number | undefined;
    try {
      supervisorPid = await launcher.spawnDetached('/bin/sh', argv, rec.bundleDir);
    } catch (e) {
      // A launcher that took the request and then stalled or died may have started the
      // supervisor: the container's own files (below) say whether it runs. The start counts as
      // attempted either way, so state() and delete() ask runc rather than trust `created`.
      if (!(e instanceof CtError && e.details.mayHaveStarted === true)) throw e;
    }
    this.store.update(id, { supervisorPid: supervisorPid ?? null, startedAt });

    // The exit and pid files are cheap to poll; `runc state` spawns a process: it is asked only
    // every 100th round, in case runc could not write its pid file.
    const deadline = Date.now() + timeoutMs;
    for (let round = 1; Date.now() < deadline; round++) {
      const exit = await this.readExit(id);
      if (exit) {
        const err = await this.runcError(id);
        if (err) {
          this.store.update(id, { status: 'stopped', exitCode: exit.exitCode, exitKnown: true, finishedAt: exit.finishedAt, pid: null });
          throw new CtError('RUNTIME_FAILED', `runc could not start ${id}: ${err}`, { id, runcError: err });
        }
        // It ran and exited before we looked: report both changes, in order.
        this.store.update(id, { status: 'running' });
        return this.store.update(id, this.stopped(this.store.get(id)!, exit));
      }
      const pid = await this.readPid(id);
      if (pid) return this.store.update(id, { status: 'running', pid });
      if (round % 100 === 0) {
        const st = await this.runcState(id);
        if (st && (st.status === 'running' || st.status === 'paused')) {
          return this.store.update(id, { status: st.status, pid: st.pid });
        }
      }
      await sleep(2);
    }
    throw new CtError('RUNTIME_FAILED', `container ${id} did not start within ${timeoutMs} ms`, { id });
  }

  async run(id: string, config: OciConfig, opts: CreateOptions = {}): Promise<ContainerRecord> {
    await this.create(id, config, opts);
    return this.start(id);
  }

  private mustGet(id: string): ContainerRecord {
    checkId(id);
    const rec = this.store.get(id);
    if (!rec || rec.status === 'removed') throw new CtError('CONTAINER_NOT_FOUND', `no container ${id}`, { id });
    return rec;
  }

  private async runcState(id: string): Promise<RuncState | undefined> {
    const r = await this.runcCmd(['state', this.rid(id)], 10000);
    if (r.code !== 0) return undefined;
    try {
      return JSON.parse(r.stdout) as RuncState;
    } catch {
      return undefined;
    }
  }

  private async readExit(id: string): Promise<ExitRecord | undefined> {
    try {
      const path = this.exitFile(id);
      const parsed = JSON.parse(await readFile(path, 'utf8')) as { exitCode?: unknown; supervisor?: unknown };
      if (typeof parsed.exitCode !== 'number' || !Number.isInteger(parsed.exitCode)) return undefined;
      // Written by another run's supervisor (the previous one, still draining its loggers when
      // the container was started again, writes late into this run's file): not this run's exit.
      // A file without the field is from a supervisor before it was written (an upgrade): taken.
      const own = this.store.get(id)?.supervisorPid;
      if (typeof parsed.supervisor === 'number' && own && parsed.supervisor !== own) return undefined;
      return { exitCode: parsed.exitCode, finishedAt: (await stat(path)).mtime.toISOString() };
    } catch {
      return undefined; // absent, or caught mid-write: ask again later
    }
  }

  /** The container's pid once runc has started its process (runc writes the file by rename: whole or absent). */
  private async readPid(id: string): Promise<number | undefined> {
    try {
      const pid = Number((await readFile(this.pidFile(id), 'utf8')).trim());
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /** runc's own error for this container (its --log, JSON lines), if it logged one. */
  private async runcError(id: string): Promise<string | undefined> {
    let text: string;
    try {
      text = await readFile(this.runcLog(id), 'utf8');
    } catch {
      return undefined;
    }
    for (const line of text.split('\n').reverse()) {
      try {
        const entry = JSON.parse(line) as { level?: string; msg?: string };
        if (entry.level === 'error' || entry.level === 'fatal') return entry.msg ?? 'unknown error';
      } catch {
        // not a JSON line
      }
    }
    return undefined;
  }

  /**
   * A previous run's supervisor still draining its loggers (past stop()'s wait for its exit file,
   * EXIT_FILE_WAIT_MS) holds their directories' locks: the new run's multilog processes would find
   * them locked and exit at once, and everything the new run writes would be lost, the container
   * running with no log. It has had its wait: its process group (its own session: the supervisor,
   * its loggers) is asked to end (multilog finishes its line on TERM), then killed. The pid is
   * checked to still be this container's supervisor first (pids are reused). Its exit file is
   * then never written, so it cannot be taken for the new run's either.
   */
  private async endPreviousSupervisor(rec: ContainerRecord): Promise<void> {
    const pid = rec.supervisorPid;
    if (!pid || !this.supervisorAlive(rec)) return;
    for (const [signal, ms] of [['SIGTERM', PREVIOUS_SUPERVISOR_TERM_MS], ['SIGKILL', PREVIOUS_SUPERVISOR_KILL_MS]] as const) {
      try {
        process.kill(-pid, signal);
      } catch {
        return; // gone meanwhile
      }
      for (const until = Date.now() + ms; Date.now() < until; await sleep(10)) if (!this.supervisorAlive(rec)) return;
    }
    throw new CtError('RUNTIME_FAILED', `container ${rec.id}: the previous run's supervisor (pid ${pid}) did not end; its loggers hold the log directory`, { id: rec.id, supervisorPid: pid });
  }

  /**
   * Does this container's supervisor still run? Its recorded pid may belong to another process by
   * now (pids are reused: the exit file would be waited for in vain, a start that died would read
   * as being started): the process's command line must be a supervisor's (`ct-supervisor`, $0 of
   * supervisor.ts's script) of this container. A zombie has none: it has ended.
   */
  private supervisorAlive(rec: Pick<ContainerRecord, 'supervisorPid' | 'runcId'>): boolean {
    const pid = rec.supervisorPid;
    if (!pid) return false;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ESRCH') return false;
      // No /proc to read: the pid's existence is all there is to go by.
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    }
    return argv[3] === 'ct-supervisor' && argv.includes(rec.runcId);
  }

  /**
   * The container's current state, reconciled from runc and the supervisor's exit file. A stopped
   * container's exit code comes from the exit file; without one (the supervisor died too) it is
   * reported stopped with the code unknown.
   */
  async state(id: string): Promise<ContainerRecord> {
    const rec = this.mustGet(id);
    // A created container whose start was attempted is asked of runc (see neverStarted).
    if (neverStarted(rec) || (rec.status === 'stopped' && rec.exitKnown)) return rec;
    // The supervisor writes the exit file only after runc has returned: the container is gone.
    const exited = await this.readExit(id);
    if (exited) return this.store.update(id, this.stopped(rec, exited));
    // Its init still in its own cgroup, not frozen: running, without a `runc state` process.
    if (rec.status === 'running' && (await initRunning(rec.pid, rec.cgroupsPath, this.unified))) return rec;
    const st = await this.runcState(id);
    if (st && (st.status === 'running' || st.status === 'paused')) {
      return rec.status === st.status && rec.pid === st.pid ? rec : this.store.update(id, { status: st.status, pid: st.pid });
    }
    // Being started: the supervisor lives and `runc run` is between its create and its start (runc
    // says created or creating, or does not know it yet). Not stopped: that record, written while
    // start() waited, showed a starting container stopped and logged a stop that never happened.
    if (rec.status === 'created' && (!st || st.status === 'created' || st.status === 'creating') && this.supervisorAlive(rec) && !(await this.readExit(id))) return rec;
    // runc says stopped (or has forgotten it): the supervisor's exit file, if any, has the code.
    let exit = await this.readExit(id);
    if (!exit && this.supervisorAlive(rec)) {
      // The supervisor is about to write it; give it a moment.
      for (let i = 0; i < 50 && !exit; i++) {
        await sleep(20);
        exit = await this.readExit(id);
      }
    }
    // Gone between the two looks above: it writes the file before it exits, so once more.
    exit ??= await this.readExit(id);
    if (exit) return this.store.update(id, this.stopped(rec, exit));
    return this.store.update(id, { status: 'stopped', pid: null, exitCode: null, exitKnown: false, exitReason: null, finishedAt: rec.finishedAt ?? new Date().toISOString() });
  }

  /**
   * The record of a container that has exited. A SIGKILL (137) of a container with a memory limit
   * is checked against the kernel's OOM reports for its cgroup (host/resources/oom.ts).
   */
  private stopped(rec: ContainerRecord, exit: ExitRecord): Partial<ContainerRecord> {
    const oom = exit.exitCode === 137 && rec.cgroupsPath && rec.startedAt ? oomKilledSince(rec.cgroupsPath, Date.parse(rec.startedAt)) : false;
    return { status: 'stopped', pid: null, exitCode: exit.exitCode, exitKnown: true, finishedAt: exit.finishedAt, exitReason: oom ? 'OOM_KILLED' : null };
  }

  /** All containers (not removed), reconciled. */
  async list(): Promise<ContainerRecord[]> {
    const out: ContainerRecord[] = [];
    for (const rec of this.store.list()) out.push(await this.state(rec.id));
    return out;
  }

  /** After an agent restart: reconcile every container, and report what changed meanwhile. */
  async recover(): Promise<{ containers: ContainerRecord[]; changed: { id: string; from: ContainerStatus; to: ContainerStatus }[] }> {
    const before = new Map(this.store.list().map((r) => [r.id, r.status]));
    const containers = await this.list();
    const changed = containers
      .filter((c) => before.get(c.id) !== c.status)
      .map((c) => ({ id: c.id, from: before.get(c.id)!, to: c.status }));
    return { containers, changed };
  }

  async kill(id: string, signal: KillSignal = 'TERM'): Promise<void> {
    this.mustGet(id);
    const r = await this.runcCmd(['kill', this.rid(id), signal]);
    // Not running, or already gone (a restart-policy pass deleted it between the caller's state
    // check and this kill): nothing left to signal.
    if (r.code !== 0 && !/not running|container does not exist/i.test(r.stderr)) {
      throw new CtError('RUNTIME_FAILED', `runc kill ${id}: ${r.stderr.trim()}`, { id });
    }
  }

  /** Waits until the container has stopped; resolves with its reconciled record. */
  async wait(id: string, timeoutMs = 30000): Promise<ContainerRecord> {
    const deadline = Date.now() + timeoutMs;
    let exitDeadline: number | undefined;
    for (;;) {
      const rec = await this.state(id);
      if (rec.status === 'created') return rec;
      if (rec.status === 'stopped') {
        // runc has returned but the supervisor may still be draining the app's last lines into
        // the loggers before it writes the exit file (seconds on a loaded host): while it lives,
        // the code is coming, whatever is left of the grace period the app had to stop in.
        if (rec.exitKnown) return rec;
        // Gone: it wrote the exit file before it exited, maybe just after state() looked for it
        // (then it read "exit unknown" on a loaded host), so looked for once more.
        if (!this.supervisorAlive(rec)) return this.state(id);
        exitDeadline ??= Date.now() + EXIT_FILE_WAIT_MS;
        if (Date.now() > exitDeadline) return rec;
      } else if (Date.now() > deadline) {
        throw new CtError('RUNTIME_FAILED', `container ${id} still running after ${timeoutMs} ms`, { id });
      }
      // Between rounds, wait on the exit file (cheap) rather than asking runc each time.
      for (let i = 0; i < 10 && !(await this.readExit(id)); i++) await sleep(5);
    }
  }


  /** SIGTERM, then SIGKILL after the grace period. */
  async stop(id: string, graceMs = 5000): Promise<ContainerRecord> {
    const rec = await this.state(id);
    if (rec.status !== 'running' && rec.status !== 'paused') return rec;
    await this.kill(id, 'TERM');
    try {
      return await this.wait(id, graceMs);
    } catch {
      await this.kill(id, 'KILL');
      return this.wait(id, 10000);
    }
  }

  /**
   * Stops the container if it runs, then starts it again from the same bundle (and cgroup path,
   * so a monitor keyed on it must be restarted too: the cgroup is new). The exit code of the
   * previous run stays in the change log.
   */
  async restart(id: string, graceMs = 5000): Promise<ContainerRecord> {
    const rec = await this.stop(id, graceMs);
    if (rec.status === 'created') return this.start(id);
    // `runc run` removes its container when it returns; this only cleans up after a supervisor that died.
    await this.runcCmd(['delete', '--force', this.rid(id)]);
    await rm(this.exitFile(id), { force: true });
    if (rec.cgroupsPath && this.unified) await mkdir(join(this.unified, rec.cgroupsPath), { recursive: true });
    this.store.update(id, { status: 'created', pid: null, exitCode: null, exitKnown: false, exitReason: null, startedAt: null, finishedAt: null });
    try {
      return await this.start(id);
    } catch (e) {
      // Refused before anything was launched (beforeStart: a required monitor that could not
      // attach): stopped again, so that the restart policy tries again later rather than never
      // (it restarts stopped containers only).
      const now = this.store.get(id);
      if (now && neverStarted(now)) this.store.update(id, { status: 'stopped', exitKnown: false, finishedAt: new Date().toISOString() });
      throw e;
    }
  }

  /**
   * Runs a command inside a running container (`runc exec`, the container's own namespaces, cgroup,
   * seccomp profile and user): exec health checks. Killed at the timeout.
   */
  async exec(id: string, argv: readonly string[], timeoutMs: number): Promise<{ code: number | null; output: string; timedOut: boolean; overflowed: boolean }> {
    this.mustGet(id);
    // Only the output's end is kept (as Docker keeps 4 KiB of a check's): a check may print a
    // page (`curl -f http://…/`); one that prints without end is killed past EXEC_OUTPUT_MAX.
    const r = await runTool(this.runc, ['--root', this.root, 'exec', this.rid(id), ...argv], { timeoutMs, keepOutputBytes: 4096, maxOutputBytes: EXEC_OUTPUT_MAX });
    if (r.missing) throw new CtError('HOST_TOOL_MISSING', `${this.runc} is not installed`, { tool: this.runc });
    return { code: r.code, output: `${r.stdout}${r.stderr}`.slice(-4096), timedOut: r.timedOut === true, overflowed: r.overflowed === true };
  }

  async pause(id: string): Promise<ContainerRecord> {
    this.mustGet(id);
    const r = await this.runcCmd(['pause', this.rid(id)]);
    if (r.code !== 0) throw new CtError('RUNTIME_FAILED', `runc pause ${id}: ${r.stderr.trim()}`, { id });
    return this.state(id);
  }

  async resume(id: string): Promise<ContainerRecord> {
    this.mustGet(id);
    const r = await this.runcCmd(['resume', this.rid(id)]);
    if (r.code !== 0) throw new CtError('RUNTIME_FAILED', `runc resume ${id}: ${r.stderr.trim()}`, { id });
    return this.state(id);
  }

  /** Removes the container (force: kill it first). Logs stay until the bundle directory is purged. */
  async delete(id: string, opts: { force?: boolean; purge?: boolean } = {}): Promise<ContainerRecord> {
    let last = this.mustGet(id);
    try {
      const rec = last = await this.state(id);
      if ((rec.status === 'running' || rec.status === 'paused') && !opts.force) {
        throw new CtError('USAGE', `container ${id} is ${rec.status}; stop it first or force`, { id });
      }
      // Once the supervisor has written the exit code, `runc run` has returned and removed its
      // container itself: nothing left for `runc delete` (and no process to spawn).
      if (!(rec.status === 'stopped' && rec.exitKnown) && !neverStarted(rec)) {
        const r = await this.runcCmd(['delete', ...(opts.force ? ['--force'] : []), this.rid(id)]);
        if (r.code !== 0 && !/does not exist|not found/i.test(r.stderr)) {
          throw new CtError('RUNTIME_FAILED', `runc delete ${id}: ${r.stderr.trim()}`, { id });
        }
      }
      if (rec.cgroupsPath && this.unified) await rmdir(join(this.unified, rec.cgroupsPath)).catch(() => {});
      // The store's bundle directory: containers/<runc id> under this state directory, whatever the
      // database says (state.ts fromRow refuses a row recording another).
      if (opts.purge) await rm(rec.bundleDir, { recursive: true, force: true });
      return this.store.update(id, { status: 'removed', pid: null });
    } catch (e) {
      // Removed and forgotten by another process meanwhile (a `ct run` ending when the container
      // it watched stopped): removed all the same.
      if (e instanceof CtError && e.code === 'CONTAINER_NOT_FOUND') return { ...last, status: 'removed', pid: null };
      throw e;
    }
  }


  /** The container's output so far (stdout and stderr, interleaved in time order), at most maxBytes (1 MiB) of it. */
  async logs(id: string, opts: { maxBytes?: number } = {}): Promise<string> {
    const rec = this.mustGet(id);
    const max = opts.maxBytes ?? 1 << 20;
    if (rec.logPath.endsWith('.log')) {
      // A container created by an agent from before the log directories: one file, both streams.
      const text = await readFile(rec.logPath, 'utf8').catch(() => '');
      return text.length > max ? text.slice(-max) : text;
    }
    return renderText((await readLogs(rec.logPath, { maxBytes: max })).entries);
  }

  /** The container's log lines with their stream and time (`since`: after a cursor, for followers). */
  async logEntries(id: string, opts: ReadOptions = {}): Promise<LogPage> {
    const rec = this.mustGet(id);
    if (rec.logPath.endsWith('.log')) return { entries: [] };
    return readLogs(rec.logPath, opts);
  }

  /** The directory holding the container's stdout/ and stderr/ logs. */
  logDir(id: string): string {
    return this.mustGet(id).logPath;
  }
}

/** Bounds of multilog's own (s: 4096-16777215 bytes, n: at least 2 files). */
export function checkLogLimits(l: LogLimits): LogLimits {
  if (!Number.isInteger(l.maxBytes) || l.maxBytes < 4096 || l.maxBytes > 16777215) throw new CtError('USAGE', `log file size must be 4096-16777215 bytes (got ${l.maxBytes})`, {});
  if (!Number.isInteger(l.files) || l.files < 2 || l.files > 1000) throw new CtError('USAGE', `log files kept must be 2-1000 (got ${l.files})`, {});
  return l;
}
