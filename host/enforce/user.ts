import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';

/** The user a container runs as when neither the manifest nor the image names one. */
export const NOBODY = { uid: 65534, gid: 65534 };

/**
 * Reads a file of the rootfs without following links: the rootfs is bundle content, and
 * `/etc/passwd -> /etc/shadow` must not read the host's file.
 */
async function readRootfsFile(rootfs: string, rel: string[]): Promise<string | undefined> {
  let p = rootfs;
  for (const part of rel) {
    p = join(p, part);
    try {
      const st = await lstat(p);
      if (st.isSymbolicLink()) return undefined;
    } catch {
      return undefined;
    }
  }
  const fh = await open(p, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > 1 << 20) return undefined;
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

function lookup(text: string | undefined, name: string, idField: number, gidField?: number): [number, number | undefined] | undefined {
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length > idField && /^\d+$/.test(f[idField])) {
      return [Number(f[idField]), gidField !== undefined && /^\d+$/.test(f[gidField] ?? '') ? Number(f[gidField]) : undefined];
    }
  }
  return undefined;
}

/**
 * `user` as the manifest or image gives it (`name`, `uid`, `name:group`, `uid:gid`) → numeric ids,
 * names looked up in the rootfs's /etc/passwd and /etc/group. No user → nobody (65534), never root.
 */
export async function resolveUser(rootfs: string, user: string | undefined): Promise<{ uid: number; gid: number }> {
  if (user === undefined || user === '') return { ...NOBODY };
  const [u, g] = user.split(':', 2);
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(u)) uid = Number(u);
  else {
    const found = lookup(await readRootfsFile(rootfs, ['etc', 'passwd']), u, 2, 3);
    if (!found) throw new CtError('MANIFEST_INVALID', `runtime.user: no user ${JSON.stringify(u)} in the image's /etc/passwd`, { user });
    [uid, gid] = found;
  }
  if (g !== undefined) {
    if (/^\d+$/.test(g)) gid = Number(g);
    else {
      const found = lookup(await readRootfsFile(rootfs, ['etc', 'group']), g, 2);
      if (!found) throw new CtError('MANIFEST_INVALID', `runtime.user: no group ${JSON.stringify(g)} in the image's /etc/group`, { user });
      gid = found[0];
    }
  }
  if (uid > 0xfffffffe || (gid ?? 0) > 0xfffffffe) throw new CtError('MANIFEST_INVALID', `runtime.user: id out of range`, { user });
  return { uid, gid: gid ?? uid };
}
