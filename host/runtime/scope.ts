import { createHash } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Names a container holds outside its state directory — its network namespace (/run/netns) and
 * its cgroup (/sys/fs/cgroup/cerro-torre) — are shared by the whole machine, while container ids
 * are only unique within one state directory: a `ct run --name web` beside an agent's `web`, or two
 * agents on one machine serving the same environment and app, would otherwise share one namespace
 * and one cgroup (one's teardown cutting the other's network, one's limits and monitor applying to
 * both). Each machine-wide name therefore carries a short hash of the state directory's real path,
 * after the id so that names still sort and filter by container.
 */
export function stateScope(stateDir: string): string {
  let path = resolve(stateDir);
  try {
    path = realpathSync(path);
  } catch {
    // Not created yet: its spelling is what later opens resolve to once it exists.
  }
  return createHash('sha256').update(path).digest('hex').slice(0, 8);
}

/** `<container id>-<scope>`: the machine-wide name of a container of this state directory. */
export function scopedName(scope: string, id: string): string {
  return `${id}-${scope}`;
}

/** Is this a name scopedName gives the container (in any state directory), or its bare id (what earlier agents recorded)? */
export function namesContainer(name: string, id: string): boolean {
  return name === id || (name.startsWith(id) && /^-[0-9a-f]{8}$/.test(name.slice(id.length)));
}
