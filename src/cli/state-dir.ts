import { resolve } from 'node:path';

/**
 * Every `--state-dir` (ct run, ct host run and the local host commands) is made absolute as it is
 * parsed: the runtime hands its paths to supervisors that run from a container's bundle directory,
 * where a path relative to the operator's working directory names nothing.
 */
export function parseStateDir(v: string): string {
  return resolve(v);
}
