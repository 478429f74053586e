import { CtError } from '../../src/core/errors.js';
import type { GateResult } from '../health/gate.js';

/**
 * A replace an earlier agent was killed in, as the next start finds it: ended at once (`line`),
 * or ended once a resumed health check has given its verdict. That check can last as long as the
 * bundle's start period and retries allow (minutes; hours for a hostile or careless manifest), so
 * the agent runs it outside its turn and connects meanwhile: the server sees the host, other apps
 * deploy, `ct host` answers. `holds` are the containers the ending acts on; the runner keeps
 * lifecycle actions, its restart policy and assignments off them until the replace has ended.
 */
export type LeftReplace =
  /** `parked`: a check a running agent leaves to its next start (InPlaceRecovery.live). */
  | { id: string; line: string; parked?: true }
  | { id: string; holds: string[]; check(signal?: AbortSignal): Promise<GateResult>; end(gate: GateResult): Promise<string> };

/** The log line of a replace whose recovery failed (runc, netavark, the disk): its stable code first. */
export function recoveryFailed(id: string, e: unknown, kept = ''): string {
  // An errno (the disk: ENOSPC, EIO, EACCES) is IO_ERROR; the rest came from runc or netavark.
  const errno = typeof (e as NodeJS.ErrnoException)?.code === 'string' && /^E[A-Z0-9]+$/.test((e as NodeJS.ErrnoException).code!);
  const code = e instanceof CtError ? e.code : errno ? 'IO_ERROR' : 'RUNTIME_FAILED';
  return `${id}: ${code}: recovering the replace failed: ${(e as Error).message}${kept}`;
}

/** Ends them all in order, waiting for each check: for callers with nothing else to do meanwhile. */
export async function endAll(left: readonly LeftReplace[]): Promise<string[]> {
  const out: string[] = [];
  for (const l of left) out.push('line' in l ? l.line : await l.end(await l.check()));
  return out;
}
