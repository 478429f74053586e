import { spawnSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
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
 * helper has exited, and which its children do not inherit (Node opens files close-on-exec). A plain
 * fd, not a FileHandle: the garbage collector closes an unreferenced FileHandle, and the lock with it.
 */
export interface StateLock {
  release(): Promise<void>;
}

/** Who takes the lock (`agent`, or the `ct host <action>` command): written into the file once taken, so that a refusal names the holder. */
export type LockHolder = 'agent' | `ct host ${string}`;

export const lockPath = (stateDir: string) => join(stateDir, 'agent.lock');

/**
 * Takes the lock, or fails with USAGE (an agent holds it) or CONTAINER_BUSY (a `ct host` command
 * acting without an agent holds it, for the few seconds of an action: an agent waits up to
 * `waitForCommandMs` for anything but a live agent to let go).
 */
export async function lockStateDir(stateDir: string, as: LockHolder = 'agent', o: { waitForCommandMs?: number } = {}): Promise<StateLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const path = lockPath(stateDir);
  let fd: number;
  try {
    fd = openSync(path, 'a+', 0o600);
  } catch (e) {
    throw new CtError('IO_ERROR', `the lock ${path} could not be opened: ${(e as Error).message}`, { stateDir });
  }
  try {
    let r = take(fd, 0);
    const holder = () => readFileSync(path, 'utf8').slice(0, 200).trim();
    // Waited for unless a live agent holds it: the text is written just after the lock is taken
    // and left by whoever held it last, so a dead pid's text says nothing about the holder now.
    if (r.status === 1 && o.waitForCommandMs && !liveAgent(holder())) r = take(fd, Math.ceil(o.waitForCommandMs / 1000));
    if (r.status !== 0) {
      // flock exits 1 when the lock is held (--nonblock, or --wait ran out); anything else is flock failing.
      if (r.status === 1) {
        const who = holder();
        if (who.startsWith('ct host ')) throw new CtError('CONTAINER_BUSY', `a \`${who.split(' pid ')[0]}\` command is acting on ${stateDir} (it holds ${path}); try again when it has ended`, { stateDir });
        throw new CtError('USAGE', `${as === 'agent' ? 'another agent is running' : 'an agent is starting or stopping'} on ${stateDir} (it holds ${path})`, { stateDir });
      }
      const why = r.error?.message ?? (r.stderr.toString('utf8').trim().slice(0, 300) || `exit ${r.status ?? r.signal}`);
      throw new CtError('IO_ERROR', `the lock ${path} could not be taken (util-linux flock): ${why}`, { stateDir });
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${as} pid ${process.pid}\n`);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return { release: async () => closeSync(fd) };
}

function liveAgent(text: string): boolean {
  const m = /^agent pid (\d+)$/.exec(text);
  if (!m) return false;
  try {
    process.kill(Number(m[1]), 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function take(fd: number, waitSeconds: number) {
  const how = waitSeconds > 0 ? ['--wait', String(waitSeconds)] : ['--nonblock'];
  return spawnSync('flock', ['--exclusive', ...how, '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], timeout: (waitSeconds + 10) * 1000 });
}
