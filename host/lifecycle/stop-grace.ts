import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The manifest's bounds (src/bundle/runtime-extras.ts): a recorded value outside them is not used. */
const MAX_GRACE_SECONDS = 300;
/** Where a `ct run` records its manifest's stop_grace_period: in its claim (run-names/<id>, host/run/claim.ts), which lives as long as its container. */
const RUN_GRACE_FILE = 'stop-grace.json';

function graceOf(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= MAX_GRACE_SECONDS ? v : undefined;
}

/** `ct run` records the grace its manifest asks for, so that `ct host stop|restart` use it as the agent's containers' (recordedStopGrace). */
export async function recordRunStopGrace(claim: string, seconds: number): Promise<void> {
  await writeFile(join(claim, RUN_GRACE_FILE), JSON.stringify({ stop_grace_period: seconds }), { mode: 0o600 });
}

/**
 * The stop_grace_period (seconds) of container `id`'s manifest, as recorded in `stateDir`: the
 * agent's assignment record (assigned/<id>.json), else a `ct run`'s claim. Undefined when neither
 * records one (or holds a value the manifest could not have): the caller's default applies.
 */
export async function recordedStopGrace(stateDir: string, id: string): Promise<number | undefined> {
  const read = (path: string) => readFile(path, 'utf8').then((t) => JSON.parse(t) as unknown, () => undefined);
  const assigned = (await read(join(stateDir, 'assigned', `${id}.json`))) as { runtime?: { stop_grace_period?: unknown } } | undefined;
  if (assigned?.runtime?.stop_grace_period !== undefined) return graceOf(assigned.runtime.stop_grace_period);
  const run = (await read(join(stateDir, 'run-names', id, RUN_GRACE_FILE))) as { stop_grace_period?: unknown } | undefined;
  return graceOf(run?.stop_grace_period);
}
