/**
 * Non-zero tar padding (bytes after an entry's data up to the 512 boundary) is refused by the
 * archive reader itself (src/bundle/tar-walk.ts) with TAR_MALFORMED and the offset of the first
 * bad byte; the .ctp verifier's own padding check (src/verify/ctp/padding.ts) stays as a second
 * line of defence over the source bytes.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { CtError } from '../../src/core/errors.js';
import { openCtp } from '../../src/bundle/read.js';
import { readTar } from '../../src/bundle/tar-read.js';
import { LAYER_LIMITS } from '../../src/bundle/limits.js';
import { encodeHeader, padding, END_OF_ARCHIVE } from '../../src/bundle/tar-write.js';
import { checkTarPadding } from '../../src/verify/ctp/padding.js';
import { tempDir, writeUnsignedCtp } from './ctp-fixtures.js';

let tmp: Awaited<ReturnType<typeof tempDir>>;
let good: Buffer;

beforeAll(async () => {
  tmp = await tempDir('ct-tar-padding-');
  const p = join(tmp.dir, 'unsigned.ctp');
  await writeUnsignedCtp(p);
  good = await readFile(p);
});
afterAll(async () => tmp.cleanup());

async function codeAndOffset(p: Promise<unknown>): Promise<{ code: string; offset: unknown }> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CtError) return { code: e.code, offset: e.details?.offset };
    throw e;
  }
  return { code: 'none', offset: undefined };
}

/** Offset of the first padding byte after `name`'s data, from a good archive. */
async function paddingOffset(name: string): Promise<number> {
  const e = (await openCtp(good)).entries.get(name)!;
  const at = e.dataOffset + e.size;
  expect(at % 512).not.toBe(0);
  return at;
}

describe('tar reader: padding after entry data must be zero', () => {
  it('a non-zero byte in the padding after manifest.toml → TAR_MALFORMED at that offset (buffer, file, gzip)', async () => {
    const at = (await paddingOffset('manifest.toml')) + 3;
    const bad = Buffer.from(good);
    bad[at] = 0x41;
    expect(await codeAndOffset(openCtp(bad))).toEqual({ code: 'TAR_MALFORMED', offset: at });
    const p = join(tmp.dir, 'bad-padding.ctp');
    await writeFile(p, bad);
    expect(await codeAndOffset(openCtp(p))).toEqual({ code: 'TAR_MALFORMED', offset: at });
    // Offsets are in the uncompressed tar stream, whatever the compression.
    expect(await codeAndOffset(openCtp(gzipSync(bad)))).toEqual({ code: 'TAR_MALFORMED', offset: at });
    // The good archive still opens (the test changed exactly one byte).
    expect((await openCtp(good)).manifest.image_digest).toMatch(/^sha256:/);
  });

  it('the last padding byte before the boundary counts too', async () => {
    const start = await paddingOffset('security/seccomp.json');
    const last = Math.ceil(start / 512) * 512 - 1;
    const bad = Buffer.from(good);
    bad[last] = 0x01;
    expect(await codeAndOffset(openCtp(bad))).toEqual({ code: 'TAR_MALFORMED', offset: last });
  });

  it('padding after a pax extended header body → TAR_MALFORMED (readTar, as for layers)', async () => {
    const name = `app/${'f'.repeat(120)}.txt`; // a final component ustar cannot hold
    const data = Buffer.from('hello\n');
    const header = encodeHeader({ name, type: 'File', size: data.length, mode: 0o644, mtime: 0 });
    expect(header.length).toBeGreaterThan(512); // a pax header came first
    const paxSize = parseInt(header.toString('latin1', 124, 136).replace(/[\0 ]+$/, ''), 8);
    const tar = Buffer.concat([header, data, padding(data.length), END_OF_ARCHIVE]);
    const read = (b: Buffer) => readTar(Readable.from([b]), { limits: LAYER_LIMITS, where: 'layer', onEntry: () => undefined });
    expect((await read(tar)).entries).toBe(1);
    const bad = Buffer.from(tar);
    bad[512 + paxSize] = 0x0a;
    expect(await codeAndOffset(read(bad))).toEqual({ code: 'TAR_MALFORMED', offset: 512 + paxSize });
    const bad2 = Buffer.from(tar);
    const fileData = header.length + data.length; // header.length includes the file's own header block
    bad2[fileData] = 0x7f;
    expect(await codeAndOffset(read(bad2))).toEqual({ code: 'TAR_MALFORMED', offset: fileData });
  });

  it('second line: the .ctp padding check still reads the source again (buffer changed after opening)', async () => {
    const bytes = Buffer.from(good);
    const archive = await openCtp(bytes);
    await expect(checkTarPadding(archive)).resolves.toBeUndefined();
    const at = await paddingOffset('oci-layout/index.json');
    bytes[at] = 0x20; // the archive keeps reading from this buffer
    expect(await codeAndOffset(checkTarPadding(archive))).toEqual({ code: 'TAR_MALFORMED', offset: at });
  });
});
