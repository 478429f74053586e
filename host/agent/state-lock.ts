import { createServer, type Server } from 'node:net';
import { mkdir, stat } from 'node:fs/promises';
import { CtError } from '../../src/core/errors.js';

/**
 * One agent per state directory, for the agent's whole life. The control socket's ping
 * (assertNoOtherAgent) only sees an agent that already serves it: two `ct host run` started at the
 * same instant both found no answer and both went on to recover the same replaces. This lock is
 * taken first, atomically, and the kernel drops it when the process dies however it dies (kill -9
 * included), so a crashed agent never leaves it behind.
 *
 * Written by hand because Node has no flock(2): the lock is a Linux abstract Unix socket (a name
 * starting with NUL, no file on disk) named by the directory's device and inode, so every path to
 * the same directory (symlinks, bind mounts) names the same lock, and bind(2) is the atomic
 * test-and-set. Abstract names are per network namespace: agents on one state directory from two
 * namespaces are not seen (an agent runs in the host's namespace).
 */
export interface StateLock {
  release(): Promise<void>;
}

export async function lockStateDir(stateDir: string): Promise<StateLock> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const st = await stat(stateDir, { bigint: true });
  const name = `\0cerro-torre-agent:${st.dev}:${st.ino}`;
  const server: Server = createServer((sock) => sock.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'EADDRINUSE'
        ? new CtError('USAGE', `another agent is running on ${stateDir} (it holds the directory's lock)`, { stateDir })
        : new CtError('IO_ERROR', `the lock of ${stateDir} could not be taken: ${e.message}`, { stateDir }));
    });
    server.listen(name, () => resolve());
  });
  // Not what keeps the process alive: the agent's own work does.
  server.unref();
  return { release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
