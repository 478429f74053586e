/**
 * dist/ is what runners execute, committed. Rebuilding it into a temp directory must give the
 * same files with the same bytes; otherwise someone changed the actions (or the library they
 * bundle) without running `node scripts/bundle-actions.mjs`.
 */
import { describe, it, expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { REPO, readActionYml } from './runner.js';

async function files(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      if (e.isDirectory()) await walk(join(d, e.name));
      else out.push(relative(root, join(d, e.name)));
    }
  };
  await walk(root);
  return out.sort();
}

describe('dist/', () => {
  it('is what scripts/bundle-actions.mjs builds from the current sources, byte for byte', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'ct-dist-'));
    try {
      const r = spawnSync(process.execPath, ['scripts/bundle-actions.mjs', '--out', tmp], { cwd: REPO, encoding: 'utf8' });
      expect(r.status).toBe(0);
      const fresh = await files(tmp);
      expect(await files(join(REPO, 'dist'))).toEqual(fresh);
      const stale: string[] = [];
      for (const f of fresh) if (!(await readFile(join(tmp, f))).equals(await readFile(join(REPO, 'dist', f)))) stale.push(f);
      expect(stale).toEqual([]); // rebuild: node scripts/bundle-actions.mjs
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }, 60_000);

  it('every action.yml runs on node24 from a bundled file that exists', async () => {
    for (const yml of ['action.yml', 'actions/verify/action.yml', 'actions/deploy/action.yml']) {
      const a = readActionYml(yml);
      expect(a.runs.using).toBe('node24');
      const main = join(REPO, yml, '..', a.runs.main);
      expect(relative(join(REPO, 'dist'), main).startsWith('..')).toBe(false);
      await expect(readFile(main)).resolves.toBeInstanceOf(Buffer);
    }
  });

  it('does not need native modules: no bundle imports or requires better-sqlite3', async () => {
    // (Some dependencies name it as an option value in strings; only a load would need it.)
    const load = /(?:require\(\s*|from\s*|import\(\s*)["']better-sqlite3["']/;
    for (const f of await files(join(REPO, 'dist'))) expect([f, load.test(await readFile(join(REPO, 'dist', f), 'utf8'))]).toEqual([f, false]);
  });
});
