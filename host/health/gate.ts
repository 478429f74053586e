import type { HealthcheckSpec } from '../../src/bundle/runtime-extras.js';
import type { ContainerHealth } from '../../src/protocol/messages.js';
import type { RuncRuntime } from '../runtime/runc.js';
import { probe } from './probe.js';

export interface GateResult {
  health: 'healthy' | 'unhealthy';
  /** Why it is unhealthy: the last check's detail, or how the container ended. */
  detail: string;
  /** Set when the container exited while being checked (exit code, OOM_KILLED). */
  exited?: { exitCode: number | null; exitReason: string | null };
}

/** Resolves after `ms`, or at once when `signal` is aborted. */
const sleep = (ms: number, signal?: AbortSignal) => new Promise<void>((r) => {
  if (signal?.aborted) return r();
  const t = setTimeout(done, ms);
  function done() {
    clearTimeout(t);
    signal?.removeEventListener('abort', done);
    r();
  }
  signal?.addEventListener('abort', done, { once: true });
});

/**
 * Docker's health semantics for a freshly started container: checks every `interval`; during the
 * start period failures do not count (a success ends it); `retries` consecutive failures after it
 * make it unhealthy; a container that exits (even during its start period) is unhealthy at once.
 * Every check is bounded by `timeout`, so a hanging check cannot hang the deploy: the whole gate
 * ends within start_period + (retries + 1) × (interval + timeout).
 * `since` (ms since the epoch) is when the container started, when that was before this gate: a
 * check resumed after an agent restart counts the start period from the container's start, as
 * Docker does, not from the restart.
 */
export async function waitHealthy(runtime: RuncRuntime, id: string, hc: HealthcheckSpec, onState?: (h: ContainerHealth) => void, o: { since?: number; signal?: AbortSignal } = {}): Promise<GateResult> {
  const started = o.since !== undefined && Number.isFinite(o.since) ? Math.min(Date.now(), o.since) : Date.now();
  const startPeriodMs = hc.start_period * 1000;
  let failures = 0;
  let last = 'no check ran';
  runtime.store.update(id, { health: 'starting' });
  onState?.('starting');
  for (;;) {
    // Stopped by its caller (the agent is stopping): no verdict, and the container's health is left as it was.
    if (o.signal?.aborted) return { health: 'unhealthy', detail: 'the check was stopped before it ended' };
    const rec = await runtime.state(id);
    if (rec.status !== 'running' || !rec.pid) {
      runtime.store.update(id, { health: 'unhealthy' });
      const how = rec.exitReason === 'OOM_KILLED' ? 'killed by the OOM killer' : `exited with code ${rec.exitCode ?? 'unknown'}`;
      const when = Date.now() - started < startPeriodMs ? ' during its start period' : '';
      return { health: 'unhealthy', detail: `the container ${how}${when}`, exited: { exitCode: rec.exitCode, exitReason: rec.exitReason } };
    }
    const r = await probe(runtime, id, rec.pid, hc);
    last = r.detail;
    if (r.ok) {
      runtime.store.update(id, { health: 'healthy' });
      onState?.('healthy');
      return { health: 'healthy', detail: r.detail };
    }
    if (Date.now() - started >= startPeriodMs) failures++;
    if (failures >= hc.retries) {
      runtime.store.update(id, { health: 'unhealthy' });
      return { health: 'unhealthy', detail: `${failures} consecutive failed checks (last: ${last})` };
    }
    await sleep(hc.interval * 1000, o.signal);
  }
}
