import { EventEmitter } from 'node:events';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { CtError } from '../../src/core/errors.js';
import { runTool, spawnTool } from '../runtime/tools.js';
import { compileRules, type CompiledRule, type MonitorTarget } from './compile.js';
import { toEvent, type MonitorEvent } from './events.js';

/** Events kept for the iterator when nobody reads it. */
const MAX_QUEUE = 10000;

export interface MonitorOptions {
  bpftrace?: string;
  /** How long to wait for bpftrace to attach its probes. */
  attachTimeoutMs?: number;
}

async function mounted(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * bpftrace needs tracefs (tracepoint formats) and bpffs (SPEC §9). Mounts them when missing, as the
 * host runs as root; a host where that fails cannot monitor, and says so.
 */
export async function ensureTracingMounts(): Promise<void> {
  if (!(await mounted('/sys/kernel/tracing/events'))) {
    const r = await runTool('mount', ['-t', 'tracefs', 'tracefs', '/sys/kernel/tracing'], { timeoutMs: 10000 });
    if (r.code !== 0 || !(await mounted('/sys/kernel/tracing/events'))) {
      throw new CtError('HOST_CANNOT_ENFORCE', `tracefs is not mounted and mounting it failed: ${r.stderr.trim()}`, {});
    }
  }
  const bpf = await runTool('mountpoint', ['-q', '/sys/fs/bpf'], { timeoutMs: 10000 });
  if (bpf.code !== 0 && !bpf.missing) await runTool('mount', ['-t', 'bpf', 'bpf', '/sys/fs/bpf'], { timeoutMs: 10000 });
}

/**
 * A running bpftrace program watching one or more containers. Events arrive as 'event' and through
 * the async iterator (what the agent streams to the server); 'exit' when bpftrace ends. Start it
 * after the container's cgroup exists and before the container starts (runc.ts creates the cgroup
 * in create()), so nothing the app does is missed.
 */
export class Monitor extends EventEmitter {
  readonly program: string;
  private readonly rules: Map<number, CompiledRule>;
  private readonly child: ChildProcess;
  private readonly queue: MonitorEvent[] = [];
  private waiters: ((r: IteratorResult<MonitorEvent>) => void)[] = [];
  private ended = false;
  private stderr = '';
  /** Events dropped because nobody took them from the iterator (oldest first). */
  dropped = 0;

  private constructor(program: string, rules: CompiledRule[], child: ChildProcess) {
    super();
    this.program = program;
    this.rules = new Map(rules.map((r) => [r.index, r]));
    this.child = child;
  }

  static async start(targets: readonly MonitorTarget[], opts: MonitorOptions = {}): Promise<Monitor> {
    const compiled = compileRules(targets);
    await ensureTracingMounts();
    const bin = opts.bpftrace ?? 'bpftrace';
    // BPFTRACE_STRLEN: see rules.ts MAX_PATH. The program goes in argv, never through a shell.
    const child = spawnTool(bin, ['-f', 'json', '-e', compiled.text], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BPFTRACE_STRLEN: '128' },
    });
    const m = new Monitor(compiled.text, compiled.rules, child);
    await m.attach(opts.attachTimeoutMs ?? 30000, bin);
    return m;
  }

  private attach(timeoutMs: number, bin: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let attached = false;
      const timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new CtError('HOST_CANNOT_ENFORCE', `bpftrace did not attach within ${timeoutMs} ms: ${this.stderr.trim().slice(0, 500)}`, {}));
      }, timeoutMs);
      this.child.stderr!.on('data', (d: Buffer) => {
        if (this.stderr.length < 64 * 1024) this.stderr += d.toString();
      });
      this.child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          e.code === 'ENOENT'
            ? new CtError('HOST_TOOL_MISSING', `${bin} is not installed`, { tool: bin })
            : new CtError('HOST_CANNOT_ENFORCE', `bpftrace failed: ${e.message}`, {}),
        );
      });
      this.child.on('close', (code, signal) => {
        clearTimeout(timer);
        this.finish();
        if (!attached) reject(new CtError('HOST_CANNOT_ENFORCE', `bpftrace exited (${code ?? signal}) before attaching: ${this.stderr.trim().slice(0, 1000)}`, {}));
        this.emit('exit', code, signal);
      });
      const lines = createInterface({ input: this.child.stdout! });
      lines.on('line', (line) => {
        let msg: { type?: string; data?: unknown };
        try {
          msg = JSON.parse(line) as { type?: string; data?: unknown };
        } catch {
          return; // bpftrace prints a blank line after maps; nothing else is expected
        }
        if (msg.type === 'value' && Array.isArray(msg.data) && msg.data[0] === 0 && msg.data[3] === 'ready' && !attached) {
          // printed by BEGIN, which runs after every probe is attached (compile.ts)
          attached = true;
          clearTimeout(timer);
          resolve();
        } else if (msg.type === 'value' && Array.isArray(msg.data)) {
          const ev = toEvent(msg.data, this.rules);
          if (ev) this.push(ev);
        }
      });
    });
  }

  private push(ev: MonitorEvent): void {
    this.emit('event', ev);
    const w = this.waiters.shift();
    if (w) w({ value: ev, done: false });
    else {
      // A container that floods events must not exhaust the host: keep the newest, count the rest.
      if (this.queue.length >= MAX_QUEUE) {
        this.queue.shift();
        this.dropped++;
      }
      this.queue.push(ev);
    }
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    for (const w of this.waiters.splice(0)) w({ value: undefined, done: true });
  }

  /** bpftrace's diagnostics so far (for reports when it fails). */
  get diagnostics(): string {
    return this.stderr;
  }

  /** Stops bpftrace (SIGINT lets it detach cleanly) and ends the iterator. */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const closed = new Promise<void>((r) => this.child.once('close', () => r()));
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await closed;
    clearTimeout(timer);
  }

  /** Waits for the first event matching `pred` (tests, the agent's alert rules). */
  waitFor(pred: (e: MonitorEvent) => boolean, timeoutMs = 10000): Promise<MonitorEvent> {
    const seen = this.queue.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.off('event', on);
        reject(new Error(`no matching monitor event within ${timeoutMs} ms`));
      }, timeoutMs);
      const on = (e: MonitorEvent) => {
        if (!pred(e)) return;
        clearTimeout(timer);
        this.off('event', on);
        resolve(e);
      };
      this.on('event', on);
    });
  }

  /** Events seen so far and not yet taken by the iterator. */
  buffered(): readonly MonitorEvent[] {
    return this.queue;
  }

  [Symbol.asyncIterator](): AsyncIterator<MonitorEvent> {
    return {
      next: () => {
        const ev = this.queue.shift();
        if (ev) return Promise.resolve({ value: ev, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((r) => this.waiters.push(r));
      },
    };
  }
}
