import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import type { CtpArchive } from '../../src/bundle/archive.js';
import type { OciConfig } from '../enforce/types.js';
import type { RuntimeGrants } from '../enforce/types.js';
import type { RuncRuntime } from '../runtime/runc.js';
import type { ContainerRecord } from '../runtime/state.js';
import type { MonitorEvent } from './events.js';
import { Monitor } from './monitor.js';
import { parseRules } from './rules.js';
import type { MonitorTarget } from './compile.js';

const RULES_FILE = 'security/monitor.yaml';
/** The bundle's rules, kept with the container (its config.json) so that every start finds them. */
export const MONITOR_ANNOTATION = 'dev.cerro-torre.monitor';
/** `true` when a policy requires monitoring: a container that cannot be watched does not start. */
export const MONITOR_REQUIRED_ANNOTATION = 'dev.cerro-torre.monitor.required';

/**
 * The annotations that carry a bundle's monitoring rules into its container's config (checked
 * here: rules outside the closed language are refused before anything starts).
 */
export function monitorAnnotations(archive: CtpArchive, grants: RuntimeGrants): Record<string, string> {
  if (!archive.has(RULES_FILE)) return {};
  const text = archive.file(RULES_FILE).toString('utf8');
  parseRules(text);
  return { [MONITOR_ANNOTATION]: text, [MONITOR_REQUIRED_ANNOTATION]: grants.monitoring === 'required' ? 'true' : 'false' };
}

/** The monitoring rules a container's config carries (undefined: none, or no such container). */
export async function monitorRulesOf(runtime: RuncRuntime, runcId: string): Promise<{ rec: ContainerRecord; text: string; required: boolean } | undefined> {
  const rec = runtime.store.byRuncId(runcId);
  if (!rec) return undefined;
  const annotations = (JSON.parse(await readFile(join(rec.bundleDir, 'config.json'), 'utf8')) as OciConfig).annotations ?? {};
  const text = annotations[MONITOR_ANNOTATION];
  return text === undefined ? undefined : { rec, text, required: annotations[MONITOR_REQUIRED_ANNOTATION] === 'true' };
}

/** The app's container id a record serves: its own, or, for a side-by-side candidate, the one it replaces. */
function appIdOf(rec: ContainerRecord): string {
  return rec.replaces ?? rec.id;
}

export interface ContainerMonitorsOptions {
  runtime: RuncRuntime;
  /** The host can trace (bpftrace and tracefs: HostFacts.ebpf.usable). */
  canTrace: boolean;
  /** An event of a watched container, by its id (the app's, not the runc id). */
  onEvent: (container: string, event: MonitorEvent) => void;
  /** Why a container is not watched, a monitor that ended by itself (`container`: the app's id). */
  log: (line: string, container?: string) => void;
  /** bpftrace's start (tests). */
  start?: (targets: readonly MonitorTarget[]) => Promise<Monitor>;
}

/**
 * One bpftrace per watched container, started before each start of it (the runtime's beforeStart:
 * a deploy, a restart by the policy or an operator, a rollback, a replace side by side), once its
 * cgroup exists and before the app's first instruction; every start makes a new cgroup, so a
 * monitor of an earlier run is replaced. The rules come from the container's own config.json
 * (monitorAnnotations), so they are the verified bundle's whichever path starts it. A container
 * whose policy requires monitoring and that cannot be watched is not started (HOST_CANNOT_ENFORCE);
 * otherwise that is logged and it runs unwatched.
 */
export class ContainerMonitors {
  private readonly monitors = new Map<string, Monitor>();
  private readonly names = new Map<string, { id: string; at: number }>();
  private readonly turns = new Map<string, number>();
  private closed = false;

  constructor(private readonly o: ContainerMonitorsOptions) {}

  /** For RuncRuntime's beforeStart: (re)starts the monitor of the container runc knows as `runcId`. */
  async beforeStart(runcId: string): Promise<void> {
    return this.watch(runcId, false);
  }

  /** `running`: the app already runs (attachRunning): its cgroup is live from the start. */
  private async watch(runcId: string, running: boolean): Promise<void> {
    // Watches of one container may overlap (attachRunning beside a start): the one begun last is
    // for the newest cgroup, whichever attaches first, so each knows its turn.
    const turn = (this.turns.get(runcId) ?? 0) + 1;
    this.turns.set(runcId, turn);
    await this.stopOne(runcId);
    const found = await monitorRulesOf(this.o.runtime, runcId);
    if (!found) return;
    const { rec, text, required } = found;
    const cgroupDir = this.o.runtime.cgroupDir(rec.id);
    // The app it serves: a side-by-side candidate's events and notes are the replaced app's.
    const app = appIdOf(rec);
    const refuse = (why: string): void => {
      if (required && running) {
        // It runs already (started under an earlier agent): said, and left running.
        return this.o.log(`monitor: ${rec.id} runs unwatched although monitoring is required: ${why}`, app);
      }
      if (required) {
        // Said here too: a start the restart policy makes has no caller to tell.
        this.o.log(`monitor: ${rec.id} not started: monitoring is required but ${why}`, app);
        throw new CtError('HOST_CANNOT_ENFORCE', `${rec.id}: monitoring required but ${why}`, { id: rec.id });
      }
      this.o.log(`monitor: ${rec.id} not watched (${why}); the bundle's rules are not enforced`, app);
    };
    if (this.closed) return refuse('the agent is stopping');
    if (!this.o.canTrace || !cgroupDir) return refuse(!cgroupDir ? 'no cgroup v2 hierarchy' : 'bpftrace or tracefs unavailable');
    let monitor: Monitor;
    try {
      monitor = await (this.o.start ?? ((t) => Monitor.start(t)))([{ container: runcId, cgroupDir, rules: parseRules(text), ...(running ? { running } : {}) }]);
    } catch (e) {
      return refuse(`its monitor did not start: ${(e as Error).message.slice(0, 300)}`);
    }
    if (this.closed) {
      // close() ran while bpftrace was attaching: this one would outlive the agent.
      await monitor.stop().catch(() => undefined);
      return refuse('the agent is stopping');
    }
    if (this.turns.get(runcId) !== turn) {
      // A later watch began meanwhile: it decides (its cgroup is the newer one); this one goes.
      await monitor.stop().catch(() => undefined);
      return;
    }
    // An earlier watch either ended before this one began (stopped above) or saw this one's turn
    // and stopped its own: the container has no other monitor.
    this.monitors.set(runcId, monitor);
    monitor.once('exit', (code: number | null, signal: string | null) => {
      if (this.monitors.get(runcId) !== monitor) return;
      this.monitors.delete(runcId);
      const app = this.appOf(runcId);
      this.names.delete(runcId);
      this.o.log(`monitor: ${app} no longer watched (bpftrace ended: ${code ?? signal}): ${monitor.diagnostics.trim().slice(0, 300)}`, app);
    });
    // Taken from the iterator, so the monitor's queue stays empty (it keeps what nobody reads).
    void (async () => {
      let lost = 0;
      for await (const ev of monitor) {
        // One event that cannot be handed on (a database read failing) must not end the stream;
        // said for the first and every 100th after it, not once per event.
        try {
          this.o.onEvent(this.appOf(runcId), ev);
        } catch (e) {
          if (lost++ % 100 === 0) this.o.log(`monitor: ${runcId}: ${lost} events lost so far: ${String((e as Error)?.message ?? e).slice(0, 300)}`);
        }
      }
    })().catch(() => undefined);
  }

  /**
   * Containers running without a monitor (this agent started after them; a watched one needs no
   * second look): watched from now on.
   * What they did before is not seen. Never throws: a required monitor that cannot attach is logged.
   */
  async attachRunning(): Promise<void> {
    for (const rec of this.o.runtime.store.list()) {
      if ((rec.status !== 'running' && rec.status !== 'paused') || this.monitors.has(rec.runcId)) continue;
      await this.watch(rec.runcId, true).catch((e: unknown) => this.o.log(`monitor: ${rec.id} runs unwatched: ${(e as Error).message}`, rec.id));
    }
  }

  /**
   * Stops the monitors of containers that no longer run (their cgroup is gone). Each one seen
   * here, and only that one: a start meanwhile (a restart, a deploy reusing the runc id) may have
   * put a new monitor in its place, which must go on watching.
   */
  async sweep(): Promise<void> {
    const seen = [...this.monitors];
    const live = new Set(this.o.runtime.store.list().filter((r) => r.status === 'running' || r.status === 'paused' || r.status === 'created').map((r) => r.runcId));
    for (const [id, m] of seen) if (!live.has(id)) await this.stopOne(id, m);
    // Turns of containers gone (one number per container the agent ever started, otherwise).
    for (const id of [...this.turns.keys()]) if (!live.has(id) && !this.monitors.has(id)) this.turns.delete(id);
  }

  /** The containers watched now, by runc id (tests, `ct host`). */
  watched(): string[] {
    return [...this.monitors.keys()];
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.monitors.keys()].map((id) => this.stopOne(id)));
  }

  /** Stops the monitor of `runcId` (`only`: if it is still that one). */
  private async stopOne(runcId: string, only?: Monitor): Promise<void> {
    const m = this.monitors.get(runcId);
    if (!m || (only && m !== only)) return;
    this.monitors.delete(runcId);
    this.names.delete(runcId);
    await m.stop().catch(() => undefined);
  }

  /**
   * The app's container id of a runc id (they differ during and after a side-by-side replace), looked up at
   * most every 2 s per container: a container flooding events must not cost a database read each.
   */
  private appOf(runcId: string): string {
    const t = Date.now();
    const known = this.names.get(runcId);
    if (known && t - known.at < 2000) return known.id;
    const rec = this.o.runtime.store.byRuncId(runcId);
    const id = rec ? appIdOf(rec) : runcId;
    this.names.set(runcId, { id, at: t });
    return id;
  }
}
