import { CtError } from '../../src/core/errors.js';
import { CONTAINER_ACTIONS, KILL_SIGNALS, type ContainerAction, type KillSignal } from '../../src/protocol/messages.js';
import type { RuncRuntime } from '../runtime/runc.js';
import type { ContainerRecord } from '../runtime/state.js';

export interface ActionRequest {
  action: ContainerAction;
  /** kill only; TERM by default. */
  signal?: string;
  /** stop/restart: seconds between SIGTERM and SIGKILL (the manifest's stop_grace_period by default). */
  graceSeconds?: number;
}

/** Checks an action request from the channel or the command line (the server is not trusted with it). */
export function checkActionRequest(r: ActionRequest): { action: ContainerAction; signal: KillSignal; graceMs?: number } {
  if (!CONTAINER_ACTIONS.includes(r.action)) throw new CtError('USAGE', `unknown action ${JSON.stringify(String(r.action).slice(0, 32))}: one of ${CONTAINER_ACTIONS.join(', ')}`, {});
  const signal = String(r.signal ?? 'TERM').toUpperCase().replace(/^SIG/, '');
  if (!(KILL_SIGNALS as readonly string[]).includes(signal)) throw new CtError('USAGE', `signal must be one of ${KILL_SIGNALS.join(', ')}`, { signal: signal.slice(0, 16) });
  let graceMs: number | undefined;
  if (r.graceSeconds !== undefined) {
    if (typeof r.graceSeconds !== 'number' || !Number.isFinite(r.graceSeconds) || r.graceSeconds < 0 || r.graceSeconds > 300) throw new CtError('USAGE', 'graceSeconds must be 0-300', {});
    graceMs = Math.round(r.graceSeconds * 1000);
  }
  return { action: r.action, signal: signal as KillSignal, graceMs };
}

/**
 * One lifecycle action on one container, on runc's state (stop = SIGTERM, the grace period, then
 * SIGKILL; pause/resume = runc's freezer). An operator's stop or kill holds the container: the
 * restart policy does not undo it; start, restart and resume release the hold.
 */
export async function performAction(runtime: RuncRuntime, id: string, req: ActionRequest, defaultGraceMs = 10_000): Promise<ContainerRecord> {
  const { action, signal, graceMs = defaultGraceMs } = checkActionRequest(req);
  const rec = await runtime.state(id);
  switch (action) {
    case 'stop':
      runtime.store.update(id, { held: true });
      // A frozen process cannot act on SIGTERM (nor die of SIGKILL) until it is thawed.
      if (rec.status === 'paused') await runtime.resume(id);
      return runtime.stop(id, graceMs);
    case 'kill':
      if (rec.status !== 'running' && rec.status !== 'paused') throw new CtError('RUNTIME_FAILED', `container ${id} is ${rec.status}: nothing to signal`, { id, status: rec.status });
      if (signal === 'KILL' || signal === 'TERM' || signal === 'INT') runtime.store.update(id, { held: true });
      await runtime.kill(id, signal);
      // A frozen process cannot act on a signal until it is thawed.
      if (rec.status === 'paused' && signal === 'KILL') await runtime.resume(id).catch(() => undefined);
      return signal === 'KILL' ? runtime.wait(id, 10_000) : runtime.state(id);
    case 'start':
      runtime.store.update(id, { held: false });
      if (rec.status === 'running') return rec;
      if (rec.status === 'paused') return runtime.resume(id);
      return rec.status === 'created' ? runtime.start(id) : runtime.restart(id, graceMs);
    case 'restart':
      runtime.store.update(id, { held: false });
      if (rec.status === 'paused') await runtime.resume(id);
      return runtime.restart(id, graceMs);
    case 'pause':
      if (rec.status === 'paused') return rec;
      if (rec.status !== 'running') throw new CtError('RUNTIME_FAILED', `container ${id} is ${rec.status}: only a running container can be paused`, { id, status: rec.status });
      return runtime.pause(id);
    case 'resume':
      if (rec.status === 'running') return rec;
      if (rec.status !== 'paused') throw new CtError('RUNTIME_FAILED', `container ${id} is ${rec.status}, not paused`, { id, status: rec.status });
      return runtime.resume(id);
    case 'remove':
      return runtime.delete(id, { force: true, purge: true });
  }
}
