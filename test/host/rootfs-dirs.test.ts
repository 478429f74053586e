/**
 * Which unpacked root filesystems are a container's (host/lifecycle/rootfs-dirs.ts): an agent app's
 * every generation, a `ct run` container's one directory, never another container's whose name
 * merely starts with the same letters.
 */
import { describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeAppRootfs } from '../../host/lifecycle/rootfs-dirs.js';
import { containerIdFor } from '../../src/protocol/container-id.js';

function stateWith(names: string[]): string {
  const state = mkdtempSync(join(tmpdir(), 'ct-rootfs-dirs-'));
  for (const n of names) {
    mkdirSync(join(state, 'rootfs', n), { recursive: true });
    writeFileSync(join(state, 'rootfs', n, 'file'), n);
  }
  return state;
}
const left = (state: string) => readdirSync(join(state, 'rootfs')).sort();

describe('removeAppRootfs', () => {
  it("an agent app: every root filesystem and interrupted unpack of its own, but the one kept; not another app's", async () => {
    const app = containerIdFor('prod', 'app');
    const other = containerIdFor('prod', 'app-2');
    const state = stateWith([`${app}-1`, `${app}-2`, `${app}-3`, `.${app}-4.0123456789ab.tmp`, `${other}-1`, app]);
    await removeAppRootfs(state, app, join(state, 'rootfs', `${app}-3`));
    expect(left(state)).toEqual([`${app}-3`, `${other}-1`].sort());
  });

  it('an agent app removed: all of its generations', async () => {
    const app = containerIdFor('prod', 'web');
    const state = stateWith([`${app}-1`, `${app}-7`]);
    await removeAppRootfs(state, app);
    expect(left(state)).toEqual([]);
  });

  it('a `ct run` container: its one directory; `web-2` and `web-2-7` are other containers', async () => {
    const state = stateWith(['web', 'web-2', 'web-2-7', '.web-2.0123456789ab.tmp', '.web.0123456789ab.tmp', 'web.1']);
    await removeAppRootfs(state, 'web');
    expect(left(state)).toEqual(['.web-2.0123456789ab.tmp', 'web-2', 'web-2-7', 'web.1'].sort());
  });
});
