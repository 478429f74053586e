import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempTargetName } from '../../src/core/fs.js';

/**
 * Removes an app's unpacked root filesystems (rootfs/<id>-<generation>, one per deploy the agent
 * ran) and the temporaries of unpacks a crash interrupted (never renamed into place), all but
 * `keep`: after a replace, the ones it replaced; once the app is removed, every one (an image per
 * deploy would otherwise stay on disk for good). The state directory is the agent's own (0700):
 * recursive removal is safe there (src/core/fs.ts, `private-trees`).
 */
export async function removeAppRootfs(stateDir: string, id: string, keep?: string): Promise<void> {
  const parent = join(stateDir, 'rootfs');
  const mine = new RegExp(`^${id.replace(/[.]/g, '\\.')}-\\d+$`);
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const owned = mine.test(name) || mine.test(tempTargetName(name) ?? '');
    if (owned && join(parent, name) !== keep) await rm(join(parent, name), { recursive: true, force: true });
  }
}
