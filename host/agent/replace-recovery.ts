import { access, rm } from 'node:fs/promises';
import { writeFileAtomic } from '../../src/core/fs.js';
import { CtError } from '../../src/core/errors.js';
import { waitHealthy, type GateResult } from '../health/gate.js';
import { rootfsOf, type Previous } from '../lifecycle/replace.js';
import { dropReplaceRecord, leftReplaceRecords, replaceRecordPath, type ReplaceRecord } from '../lifecycle/replace-record.js';
import type { NetworkManager } from '../network/index.js';
import type { RuncRuntime } from '../runtime/runc.js';
import type { ContainerRecord } from '../runtime/state.js';
import { recoveryFailed, type LeftReplace } from '../lifecycle/left-replace.js';

/** What the recovery needs of the runner: the very steps its live replace ends with. */
export interface InPlaceRecovery {
  runtime: RuncRuntime;
  network?: NetworkManager;
  stateDir: string;
  /** Only the records of these apps (the live agent's retries); default every record. */
  only?: ReadonlySet<string>;
  /**
   * A running agent's retry (LocalRunner.retryUnfinished): a damaged record is left to the operator
   * silently (its start said so), and a health check to resume is not: holding the app meanwhile
   * would refuse a deploy already under way, so that ending is `parked` for the next start.
   */
  live?: boolean;
  assignedPath(id: string): string;
  /** The new bundle is the app (assigned record written, replaced root filesystems removed). */
  finish(id: string, rootfs: string, assigned: string): Promise<void>;
  /** The new bundle failed: the previous one is put back (or, with none, the new one stopped and held). */
  fail(id: string, rootfs: string, previous: Previous | undefined, rec: ContainerRecord, why: string | undefined, exitReason: string | null): Promise<{ out: { code?: string; message?: string }; rollbackFailed: boolean }>;
  /** Puts the previous bundle back; says how that went. */
  rollBack(id: string, rootfs: string, previous: Previous): Promise<{ ok: boolean; text: string }>;
}

/**
 * At agent start: every in-place replace an earlier agent was killed in (replacing/<id>.json,
 * host/lifecycle/replace-record.ts) ends the way the live one would have. A new container that
 * still runs is health-checked again (the start period counted from its start) and becomes the app
 * only if it passes; otherwise, or when it no longer runs, the previous bundle is put back. A
 * record that cannot be read is not guessed at: the container is left as it is and the line says
 * HOST_STATE_INVALID. In two steps: what can be decided now is done now; a check to resume is left
 * pending (LeftReplace: the caller runs it outside its turn). A record is dropped only once its
 * replace has ended; one whose ending failed is kept for the next start (or an operator).
 */
export async function leftInPlace(o: InPlaceRecovery): Promise<LeftReplace[]> {
  const done: LeftReplace[] = [];
  const kept = '; the record is kept';
  for (const left of await leftReplaceRecords(o.stateDir, o.only)) {
    const { id } = left;
    if ('invalid' in left) {
      if (o.live) continue;
      done.push({ id, line: `${id}: HOST_STATE_INVALID: ${replaceRecordPath(o.stateDir, id)} is damaged (${left.invalid}); the container is left as it is and the record kept for an operator` });
      continue;
    }
    const ended = async (line: string) => {
      await dropReplaceRecord(o.stateDir, id);
      return line;
    };
    try {
      const now = await resume(o, left.record);
      if (typeof now === 'string') done.push({ id, line: await ended(now) });
      else if (o.live) done.push({ id, line: `${id}: its new bundle's health check is resumed at the agent's next start${kept}`, parked: true });
      else {
        done.push({
          id, holds: [id],
          // A check that cannot run (the container vanished under it) is a failed one.
          check: (signal) => now.check(signal).catch((e: unknown) => ({ health: 'unhealthy' as const, detail: `its check could not run: ${(e as Error).message}` })),
          end: (gate) => now.end(gate).then(ended, (e: unknown) => recoveryFailed(id, e, kept)),
        });
      }
    } catch (e) {
      // Kept for the next start (or an operator): the agent itself goes on.
      done.push({ id, line: recoveryFailed(id, e, kept) });
    }
  }
  return done;
}

type Pending = { check(signal?: AbortSignal): Promise<GateResult>; end(gate: GateResult | undefined): Promise<string> };

async function resume(o: InPlaceRecovery, r: ReplaceRecord): Promise<string | Pending> {
  const { id, previous } = r;
  const cur = await o.runtime.state(id).catch(() => undefined);
  const root = cur ? await rootfsOf(cur) : undefined;
  if (cur && root !== r.rootfs) {
    // Killed before the old container was deleted (or after a rollback had recreated it): it is
    // what runs, and its assigned record is put back if the replace had removed it already,
    // durably: the record that could redo this is dropped (durably) right after.
    if (previous?.assigned && !(await exists(o.assignedPath(id)))) await writeFileAtomic(o.assignedPath(id), previous.assigned, 0o600, { durable: true });
    await rm(r.rootfs, { recursive: true, force: true });
    // Killed between a rollback's create and its start: it ran before, so it runs again (the
    // restart policy only starts what stopped, and nothing else would start a `created` one).
    const status = cur.status === 'created' && previous?.wasRunning ? (await o.runtime.start(id)).status : cur.status;
    return `${id}: the replace had not begun or was rolled back; the previous container is kept (${status})`;
  }
  if (!cur) {
    // Killed between the old container's removal and the new one's creation.
    if (previous) return `${id}: the new bundle never ran; ${rolledBack(await o.rollBack(id, r.rootfs, previous))}`;
    await rm(r.rootfs, { recursive: true, force: true });
    return `${id}: the new bundle never ran and nothing ran before`;
  }
  const end = async (gate: GateResult | undefined): Promise<string> => {
    // Read again: the container may have ended while it was being checked, or waiting for the turn.
    const now = gate ? (await o.runtime.state(id).catch(() => undefined)) ?? cur : cur;
    // Its check had passed before the agent died (or the finish failed: IO_ERROR): proven, it is
    // the app even if it has stopped since (a reboot), as the live replace would have made it.
    const proven = !gate && r.healthcheck !== undefined && cur.health === 'healthy';
    if (proven || (now.status === 'running' && gate?.health !== 'unhealthy')) {
      await o.finish(id, r.rootfs, r.assigned);
      const how = gate ? 'passed its health check' : proven ? 'had passed its health check' : 'runs';
      return `${id}: the new bundle ${how} ${whenOf(o)}: it is the app${now.status === 'running' ? '' : ` (${now.status})`}`;
    }
    // One that passed and then ended is no health-check failure: RUNTIME_FAILED, with how it ended.
    const why = gate?.health === 'unhealthy' ? gate.detail : undefined;
    const rec = o.runtime.store.get(id) ?? now;
    // As in the live path: without a previous bundle the failed one's network rests with it.
    if (!previous) await o.network?.suspend(id).catch(() => undefined);
    const failed = await o.fail(id, r.rootfs, previous, rec, why, gate?.exited?.exitReason ?? rec.exitReason);
    const line = `${failed.out.code ?? 'RUNTIME_FAILED'} ${whenOf(o)}: ${failed.out.message ?? 'the new bundle failed'}`;
    // The record stays: the next start tries the rollback again.
    if (failed.rollbackFailed) throw new CtError('RUNTIME_FAILED', line);
    return `${id}: ${line}`;
  };
  // A check that had passed before the agent died needs no second one.
  if (cur.status === 'running' && r.healthcheck && cur.health !== 'healthy') {
    const hc = r.healthcheck;
    const since = cur.startedAt ? Date.parse(cur.startedAt) : undefined;
    return { check: (signal) => waitHealthy(o.runtime, id, hc, undefined, { since, signal }), end };
  }
  return end(undefined);
}

/** How the lines say when the ending came. */
const whenOf = (o: InPlaceRecovery) => (o.live ? 'when the agent tried again' : 'after the agent restart');

const exists = (path: string) => access(path).then(() => true, () => false);

/** A rollback's account, or (it failed) an error that keeps the record for the next start. */
function rolledBack(b: { ok: boolean; text: string }): string {
  if (!b.ok) throw new CtError('RUNTIME_FAILED', b.text);
  return b.text;
}
