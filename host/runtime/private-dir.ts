import { lstat, stat } from 'node:fs/promises';
import { mkdirDurable } from '../../src/core/fs.js';
import { CtError } from '../../src/core/errors.js';

/**
 * A state directory this process alone may write: created 0700 when missing; when it exists it must
 * be a directory (a symlink to one only if we or root made it), owned by us, and writable by no one else. `ct run` as a user
 * defaults to a predictable name in a shared directory (<tmp>/cerro-torre-run-<uid> without
 * XDG_RUNTIME_DIR): another user who made it first could otherwise plant root filesystems, symlinks
 * and records where we unpack, run and remove trees recursively. Podman checks its run root so.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  // Durable when made: the host key and enrolment written into it next are (host/agent/identity.ts).
  await mkdirDurable(dir, 0o700);
  const uid = process.getuid?.();
  // An operator's symlink (/var/lib/cerro-torre → /data/ct) is fine; one another user planted,
  // pointing wherever they like (even at a directory of ours), is not.
  const link = await lstat(dir);
  const st = link.isSymbolicLink() ? await stat(dir) : link;
  const problem = link.isSymbolicLink() && uid !== undefined && link.uid !== uid && link.uid !== 0 ? `is a symlink owned by uid ${link.uid}`
    : !st.isDirectory() ? 'is not a directory'
      : uid !== undefined && st.uid !== uid ? `is owned by uid ${st.uid}, not ${uid}`
        : (st.mode & 0o022) !== 0 ? `is writable by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o777).toString(8)})`
          : undefined;
  if (problem) throw new CtError('USAGE', `the state directory ${dir} ${problem}: refusing to use it (choose another with --state-dir)`, { stateDir: dir });
}
