/**
 * `ct pack DIR` reads names as bytes and refuses one that is not UTF-8 (a layer's names are UTF-8:
 * PAX records, every host). Decoded lossily to U+FFFD, such a file was then not found (a raw
 * ENOENT), or, next to a file named with the U+FFFD look-alike, that one was packed twice: a
 * duplicate entry every host refuses at deploy, after the bundle was signed and pushed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packCtp } from '../../src/bundle/pack/pack.js';

const NOT_UTF8 = Buffer.from([0x6b, 0x65, 0x79, 0xff]); // "key" + a byte no UTF-8 has

describe('ct pack DIR: names that are not UTF-8', () => {
  let base: string;
  beforeAll(async () => void (base = await mkdtemp(join(tmpdir(), 'ct-pack-utf8-'))));
  afterAll(async () => rm(base, { recursive: true, force: true }));

  const project = async (name: string): Promise<string> => {
    const dir = join(base, name);
    await mkdir(join(dir, 'rootfs'), { recursive: true });
    await writeFile(join(dir, 'ct.toml'), 'name = "u"\nversion = "1"\n');
    return dir;
  };

  it('refuses a file so named, and one beside its look-alike, with IO_ERROR name-not-utf8', async () => {
    const alone = await project('alone');
    await writeFile(Buffer.concat([Buffer.from(`${alone}/rootfs/`), NOT_UTF8]), 'a');
    await expect(packCtp({ from: { dir: alone }, out: `${alone}.ctp` })).rejects.toMatchObject({ code: 'IO_ERROR', details: { reason: 'name-not-utf8' } });

    const twins = await project('twins');
    await writeFile(Buffer.concat([Buffer.from(`${twins}/rootfs/`), NOT_UTF8]), 'secret');
    await writeFile(join(twins, 'rootfs', 'key\ufffd'), 'look-alike');
    await expect(packCtp({ from: { dir: twins }, out: `${twins}.ctp` })).rejects.toMatchObject({ code: 'IO_ERROR', details: { reason: 'name-not-utf8' } });
  });

  it('refuses a symbolic link whose target is not UTF-8', async () => {
    const dir = await project('link');
    await symlink(Buffer.concat([Buffer.from('/tmp/'), NOT_UTF8]), join(dir, 'rootfs', 'l'));
    await expect(packCtp({ from: { dir }, out: `${dir}.ctp` })).rejects.toMatchObject({ code: 'IO_ERROR', details: { reason: 'name-not-utf8' } });
  });

  it('packs names that are UTF-8, the look-alike included', async () => {
    const dir = await project('fine');
    await writeFile(join(dir, 'rootfs', 'key\ufffd'), 'a');
    await writeFile(join(dir, 'rootfs', 'ключ'), 'b');
    await expect(packCtp({ from: { dir }, out: `${dir}.ctp` })).resolves.toBeDefined();
  });
});
