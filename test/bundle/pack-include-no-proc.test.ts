/**
 * `[[include]]` on Linux without /proc (a sandbox that does not mount it): refused. The fallback,
 * the name's real path, can be raced by swapping one of its directories for a link (a review
 * packed a secret so, one in ~800 packs); /proc/self/fd names the file the handle opened.
 * Run in a user and mount namespace of its own, /proc covered by an empty tmpfs.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from '../support/cli.js';

/** packCtp(opts) in a child, with /proc or without; prints `packed` or the error's code and message. */
function packIn(withProc: boolean, opts: object): Promise<string> {
  const pack = pathToFileURL(join(repoRoot, 'build', 'src', 'bundle', 'pack', 'pack.js')).href;
  const script = `const { packCtp } = await import(${JSON.stringify(pack)});
    await packCtp(${JSON.stringify(opts)})
      .then(() => console.log('packed'), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })));`;
  return promisify(execFile)('unshare', ['-rm', 'sh', '-c', `${withProc ? '' : 'mount -t tmpfs none /proc && '}exec "$0" --input-type=module -e "$1"`, process.execPath, script], { timeout: 20_000 }).then((r) => r.stdout.trim());
}

describe('[[include]] without /proc', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'ct-pack-noproc-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('is refused on Linux (USAGE, naming /proc/self/fd), and packs with /proc', async () => {
    const src = join(tmp, 'src');
    const extra = join(tmp, 'extra');
    await mkdir(src, { recursive: true });
    await mkdir(extra, { recursive: true });
    await writeFile(join(extra, 'tool'), 'tool\n');
    await writeFile(join(src, 'ct.toml'), `name = "p"\nversion = "1"\n[[include]]\nfrom = "${join(extra, 'tool')}"\nto = "bin/tool"\n`);
    const run = (withProc: boolean) => packIn(withProc, { from: { dir: src }, out: join(tmp, 'p.ctp'), includeFrom: [extra] });
    expect(await run(true)).toBe('packed');
    const refused = JSON.parse(await run(false)) as { code: string; message: string };
    expect(refused.code).toBe('USAGE');
    expect(refused.message).toContain('/proc/self/fd');
  }, 30_000);

  it('refuses a directory\'s own files too (USAGE, naming /proc/self/fd): each is judged by the name the kernel gives its handle', async () => {
    const src = join(tmp, 'plain');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'ct.toml'), 'name = "p"\nversion = "1"\n');
    await writeFile(join(src, 'file'), 'file\n');
    const run = (withProc: boolean) => packIn(withProc, { from: { dir: src }, out: join(tmp, 'plain.ctp') });
    expect(await run(true)).toBe('packed');
    const refused = JSON.parse(await run(false)) as { code: string; message: string };
    expect(refused.code).toBe('USAGE');
    expect(refused.message).toContain('/proc/self/fd');
  }, 30_000);
});
