/**
 * `ct pack DIR` holds a layer to the entries a host applies (LAYER_LIMITS.maxEntries, 250,000),
 * counting the [[include]] files and the parent directories they add, not only the walked ones:
 * before, a walk just under the limit plus includes made a layer every host refused. The limit is
 * read when layer.ts loads, so a child process lowers it to 5 first (Jest's module registry would
 * not share the change with the code under test).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from '../support/cli.js';

const build = (p: string) => pathToFileURL(join(repoRoot, 'build', 'src', 'bundle', p)).href;

/** Packs `dir` with maxEntries 5; prints "packed" or the error's code and details. */
const child = (dir: string) => `
const { LAYER_LIMITS } = await import(${JSON.stringify(build('limits.js'))});
LAYER_LIMITS.maxEntries = 5;
const { packCtp } = await import(${JSON.stringify(build('pack/pack.js'))});
const r = await packCtp({ from: { dir: ${JSON.stringify(dir)} }, out: ${JSON.stringify(`${dir}.ctp`)} }).then(() => 'packed', (e) => ({ code: e.code, details: e.details }));
console.log(JSON.stringify(r));
`;

describe('ct pack DIR: the entry limit', () => {
  let base: string;
  beforeAll(async () => {
    base = await mkdtemp(join(tmpdir(), 'ct-pack-entry-limit-'));
  });
  afterAll(async () => {
    await rm(base, { recursive: true, force: true });
  });

  /** A directory of `files` files and a ct.toml including `includes` files at `to` paths. */
  const pack = async (name: string, files: number, includes: string[]): Promise<unknown> => {
    const dir = join(base, name);
    await mkdir(dir);
    for (let i = 0; i < files; i++) await writeFile(join(dir, `f${i}`), 'x');
    await writeFile(join(dir, 'tool'), 'tool');
    const inc = includes.map((to) => `[[include]]\nfrom = "tool"\nto = "${to}"\n`).join('');
    await writeFile(join(dir, 'ct.toml'), `name = "p"\nversion = "1"\n${inc}`);
    const r = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', child(dir)], { timeout: 15_000 });
    return JSON.parse(r.stdout.trim());
  };

  it('packs up to the limit, walked entries and includes together', async () => {
    // f0..f2 and tool walked (4), one include: 5.
    expect(await pack('at-limit', 3, ['inc'])).toBe('packed');
  }, 30_000);

  it('refuses a layer the includes take over the limit (TAR_LIMIT_EXCEEDED, details.limit maxEntries)', async () => {
    // 4 walked (f0..f2, tool), 1 include: 5, within; the include's two parent directories make 7.
    expect(await pack('dirs-over', 3, ['a/b/inc'])).toEqual({ code: 'TAR_LIMIT_EXCEEDED', details: expect.objectContaining({ limit: 'maxEntries' }) });
    // 5 walked (f0..f3, tool) and one include at the top: 6.
    expect(await pack('file-over', 4, ['inc'])).toEqual({ code: 'TAR_LIMIT_EXCEEDED', details: expect.objectContaining({ limit: 'maxEntries' }) });
  }, 30_000);
});
