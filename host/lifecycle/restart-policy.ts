import type { RestartPolicy } from '../../src/bundle/runtime-extras.js';
import type { ContainerRecord } from '../runtime/state.js';

/** First delay before a restart; it doubles with each restart in a row, up to the cap. */
export const RESTART_BASE_MS = 500;
export const RESTART_CAP_MS = 60_000;
/** A run this long counts as a success for the backoff: the next restart is quick again (as in Docker). */
export const RESTART_RESET_AFTER_MS = 10_000;

/**
 * Whether the manifest's restart policy (`never | on-failure | always`; default never) restarts a
 * stopped container now. A container an operator stopped or killed, or one a failed deploy left
 * stopped, is held and left alone; on-failure restarts an exit other than 0 (an unknown exit code
 * counts as a failure). Restarts in a row wait 0.5 s, 1 s, 2 s… up to 60 s after the exit; a run
 * of 10 s or more starts the series again.
 */
export function restartDue(rec: ContainerRecord, policy: RestartPolicy | undefined, now: number): { due: boolean; delayMs: number } {
  const no = { due: false, delayMs: 0 };
  if (rec.status !== 'stopped' || rec.held || !policy || policy === 'never') return no;
  if (policy === 'on-failure' && rec.exitKnown && rec.exitCode === 0) return no;
  const ranMs = rec.startedAt && rec.finishedAt ? Date.parse(rec.finishedAt) - Date.parse(rec.startedAt) : 0;
  const streak = ranMs >= RESTART_RESET_AFTER_MS ? 0 : rec.restarts;
  const delayMs = Math.min(RESTART_CAP_MS, RESTART_BASE_MS * 2 ** Math.min(streak, 16));
  const since = now - Date.parse(rec.finishedAt ?? rec.createdAt);
  return { due: since >= delayMs, delayMs };
}
