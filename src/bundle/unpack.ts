import { closeSync, mkdirSync, openSync, writeSync, constants } from 'node:fs';
import { lstat, mkdir, readdir, rename, rm, rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CtError, asIoError } from '../core/errors.js';
import { tempPathFor } from '../core/fs.js';
import type { CtpArchive } from './archive.js';
import { checkOciLayout } from './check-layout.js';
import type { TarLimits } from './limits.js';
import type { OciImage } from './oci.js';
import { openCtp } from './read.js';

/** Refuses a target that is a symlink, a non-directory, or a non-empty directory. */
export async function assertFreshTarget(dir: string): Promise<void> {
  let st;
  try {
    st = await lstat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw asIoError(e, dir);
  }
  if (st.isSymbolicLink()) throw new CtError('IO_ERROR', `${dir}: is a symlink; refusing to extract through it`, { path: dir });
  if (!st.isDirectory() || (await readdir(dir)).length > 0) throw new CtError('IO_ERROR', `${dir}: exists and is not an empty directory`, { path: dir });
}

/**
 * `ct unpack`: extracts a `.ctp` into `outDir` in the same single pass that checks it. Only
 * regular files and directories exist in a valid bundle; they are created with O_EXCL|O_NOFOLLOW
 * in a fresh temporary directory beside `outDir`, which is renamed into place only after the
 * archive, its manifest and its OCI layout have all been checked.
 */
export async function unpackCtp(bundle: string, outDir: string, limits?: Partial<TarLimits>): Promise<{ archive: CtpArchive; image: OciImage }> {
  await assertFreshTarget(outDir);
  const tmp = tempPathFor(outDir);
  try {
    await mkdir(dirname(outDir), { recursive: true });
    await mkdir(tmp, { mode: 0o755 });
  } catch (e) {
    throw asIoError(e, outDir);
  }
  try {
    const made = new Set<string>();
    const archive = await openCtp(bundle, limits, (name) => {
      // Names were checked by the reader (relative, no "..", no links in the archive), so joining
      // under the fresh directory cannot leave it.
      const abs = join(tmp, name);
      const parent = dirname(abs);
      if (!made.has(parent)) {
        mkdirSync(parent, { recursive: true, mode: 0o755 });
        made.add(parent);
      }
      const fd = openSync(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      return {
        data(c) {
          writeSync(fd, c);
        },
        end() {
          closeSync(fd);
        },
      };
    });
    const image = checkOciLayout(archive);
    for (const d of archive.directories) mkdirSync(join(tmp, d), { recursive: true, mode: 0o755 });
    try {
      await rmdir(outDir);
    } catch {
      /* absent */
    }
    await rename(tmp, outDir);
    return { archive, image };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (e instanceof CtError) throw e;
    throw asIoError(e, outDir);
  }
}
