import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { tempTargetName } from '../../src/core/fs.js';
import { AGENT_CONTAINER_ID } from '../../src/protocol/container-id.js';

/**
 * Removes a container's unpacked root filesystems and the temporaries of unpacks a crash
 * interrupted (never renamed into place), all but `keep`: after a replace, the ones it replaced;
 * once the app is removed, every one (an image per deploy would otherwise stay on disk for good).
 * An agent app has one per deploy, rootfs/<id>-<generation>; a `ct run` container one,
 * rootfs/<id>, and there `web-2` may be another container's name, never a generation of `web`.
 * The state directory is private (0700): recursive removal is safe there (src/core/fs.ts,
 * `private-trees`).
 */
export async function removeAppRootfs(stateDir: string, id: string, keep?: string): Promise<void> {
  const parent = join(stateDir, 'rootfs');
  const escaped = id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const mine = new RegExp(AGENT_CONTAINER_ID.test(id) ? `^${escaped}(-\\d+)?$` : `^${escaped}$`);
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const owned = mine.test(name) || mine.test(tempTargetName(name) ?? '');
    if (owned && join(parent, name) !== keep) await rm(join(parent, name), { recursive: true, force: true });
  }
}
