import { spawnSync } from 'node:child_process';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';

/**
 * One agent per state directory, for the agent's whole life. The control socket's ping
 * (assertNoOtherAgent) only sees an agent that already serves it: two `ct host run` started at the
 * same instant both found no answer and both went on to recover the same replaces. This lock is
 * taken first, atomically, and the kernel drops it when the process dies however it dies (kill -9
 * included), so a crashed agent never leaves it behind. `ct host` commands acting without an agent
 * take it too, for as long as they act.
 *
 * It is flock(2) on <state>/agent.lock, inside the root-only state directory: no other user can
 * open it, so none can take the lock to keep the agent from starting (an abstract Unix socket, the
 * first version, could be squatted by anyone who could stat the directory, and was per network
 * namespace). Node has no flock(2), so util-linux's `flock` takes it on our open file, passed as its
 * fd 3: the lock belongs to the open file description, which this process keeps open after the
 * helper has exited, and which its children do not inherit (Node opens files close-on-exec).
 */
export interface StateLock {
  release(): Promise<void>;
}

export const lockPath = (stateDir: string) => join(stateDir, 'agent.lock');

export async function lockStateDir(stateDir: string, holder = 'another agent is running'): Promise<StateLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = lockPath(stateDir);
  let fh: FileHandle;
  try {
    fh = await open(path, 'a', 0o600);
  } catch (e) {
    throw new CtError('IO_ERROR', `the lock ${path} could not be opened: ${(e as Error).message}`, { stateDir });
  }
  const r = spawnSync('flock', ['--exclusive', '--nonblock', '3'], { stdio: ['ignore', 'ignore', 'pipe', fh.fd], timeout: 10_000 });
  if (r.status !== 0) {
    await fh.close();
    // flock exits 1 when the lock is held (--nonblock); anything else is flock failing.
    if (r.status === 1) throw new CtError('USAGE', `${holder} on ${stateDir} (it holds ${path})`, { stateDir });
    const why = r.error?.message ?? (r.stderr.toString('utf8').trim().slice(0, 300) || `exit ${r.status ?? r.signal}`);
    throw new CtError('IO_ERROR', `the lock ${path} could not be taken (util-linux flock): ${why}`, { stateDir });
  }
  return { release: () => fh.close() };
}
