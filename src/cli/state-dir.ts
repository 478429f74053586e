import { resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';

/**
 * Every `--state-dir` (ct run, ct host run and the local host commands) is made absolute as it is
 * parsed: the runtime hands its paths to supervisors that run from a container's bundle directory,
 * where a path relative to the operator's working directory names nothing. An empty value (an unset
 * variable, `--state-dir "$DIR"`) is refused: resolved, it would be the working directory.
 */
export function parseStateDir(v: string): string {
  // Commander reports it as every parser error: error[USAGE], exit 1.
  if (v === '') throw new InvalidArgumentError('It must not be empty (an unset variable?)');
  return resolve(v);
}
