import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { GitMirror } from '../../server/gitops/git.js';

/**
 * A desired-state repository for reconcile tests: a bare repository (`origin`, branch main), a
 * work tree pushing to it, a migrated in-memory store and the server's mirror of the bare one.
 */
export async function desiredRepo(prefix: string): Promise<{ dir: string; bare: string; work: string; db: Db; mirror: GitMirror; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const bare = join(dir, 'desired.git');
  const work = join(dir, 'work');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  execFileSync('git', ['remote', 'add', 'origin', bare], { cwd: work });
  const db = await openDb({ sqlitePath: ':memory:' });
  await migrate(db);
  const mirror = new GitMirror(bare, join(dir, 'cache'));
  return {
    dir, bare, work, db, mirror,
    async close() {
      mirror.close();
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
