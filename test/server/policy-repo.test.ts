import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyRepo, isGitSource } from '../../server/gitops/policy-repo.js';
import { PolicyStore } from '../../src/policy/store.js';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

const policy = (name: string, env: string) =>
  `apiVersion: cerro-torre.dev/v2\nkind: Policy\nname: ${name}\nmode: strict\nmatch:\n  environments: [${env}]\nsigners:\n  - role: builders\nlogQuorum: 1\n`;

/** git in a test's working clone (read when called: the clone is made in beforeAll), and a commit pushed to main. */
function workTree(work: () => string) {
  const git = (args: string[]) => execFileSync('git', args, { cwd: work(), encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' } }).trim();
  const commit = (file: string, text: string) => {
    writeFileSync(join(work(), file), text);
    git(['add', '.']);
    git(['commit', '-qm', file]);
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    return git(['rev-parse', 'HEAD']);
  };
  return { git, commit };
}

describe('policy repository followed by git', () => {
  let dir: string;
  let work: string;
  let bare: string;
  const { git, commit } = workTree(() => work);

  let db: Db;
  beforeAll(async () => {
    db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    dir = mkdtempSync(join(tmpdir(), 'ct-polrepo-'));
    bare = join(dir, 'policies.git');
    work = join(dir, 'work');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    mkdirSync(work);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    git(['remote', 'add', 'origin', bare]);
  });
  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('recognises git sources', () => {
    expect(isGitSource(bare)).toBe(true);
    expect(isGitSource('https://github.com/acme/policies')).toBe(true);
    expect(isGitSource('git@github.com:acme/policies.git')).toBe(true);
    expect(isGitSource('policies')).toBe(false);
  });

  it('checks out the head, keeps the last good set on a broken push, and refuses a rewritten history', async () => {
    const first = commit('prod.policy.yaml', policy('prod', 'production'));
    const repo = new PolicyRepo(bare, join(dir, 'data'), db);
    const store = new PolicyStore([repo.dir]);
    expect(await repo.sync()).toBe(true);
    expect(repo.commit).toBe(first);
    expect((await store.reload()).ok).toBe(true);
    expect(store.current!.policies.map((p) => p.name)).toEqual(['prod']);

    commit('broken.policy.yaml', 'apiVersion: cerro-torre.dev/v2\nkind: Policy\nname: [not a name\n');
    expect(await repo.sync()).toBe(true);
    const outcome = await store.reload();
    expect(outcome.ok).toBe(false);
    expect(outcome.issues[0]?.file ?? '').toContain('broken.policy.yaml');
    expect(store.current!.policies.map((p) => p.name)).toEqual(['prod']);

    git(['reset', '-q', '--hard', first]);
    commit('other.policy.yaml', policy('other', 'staging'));
    await expect(repo.sync()).rejects.toMatchObject({ code: 'POLICY_INVALID' });
  });
});

describe.each(['sqlite', 'postgres'] as const)('policy repository: no rollback across a restart (%s)', (dialect) => {
  let pg: Postgres | undefined;
  let dir: string;
  let work: string;
  let bare: string;
  const { git, commit } = workTree(() => work);
  /** A database as a restarted server opens it: the same file (or PostgreSQL database), migrated again. */
  const open = async (): Promise<Db> => {
    const db = await openDb(pg ? { databaseUrl: pg.url } : { sqlitePath: join(dir, 'ct.db') });
    await migrate(db);
    return db;
  };
  /** One server process: a PolicyRepo over the shared database, closed with it. */
  const serve = async <T>(dataDir: string, fn: (repo: PolicyRepo) => Promise<T>): Promise<T> => {
    const db = await open();
    const repo = new PolicyRepo(bare, join(dir, dataDir), db);
    try {
      return await fn(repo);
    } finally {
      repo.close();
      await db.close();
    }
  };

  beforeAll(async () => {
    if (dialect === 'postgres') pg = await startPostgres();
    dir = mkdtempSync(join(tmpdir(), 'ct-polrepo-restart-'));
    bare = join(dir, 'policies.git');
    work = join(dir, 'work');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    mkdirSync(work);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    git(['remote', 'add', 'origin', bare]);
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an older commit force-pushed while the server was down, and still follows a forward push', async () => {
    const a = commit('prod.policy.yaml', policy('prod', 'production'));
    const b = commit('staging.policy.yaml', policy('staging', 'staging'));
    git(['reset', '-q', '--hard', a]);
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    // First process: A, then B.
    await serve('data', async (repo) => {
      expect(await repo.sync()).toBe(true);
      expect(repo.commit).toBe(a);
      git(['reset', '-q', '--hard', b]);
      git(['push', '-q', '--force', 'origin', 'HEAD:main']);
      expect(await repo.sync()).toBe(true);
      expect(repo.commit).toBe(b);
    });
    // Down; the branch is forced back to A. The restarted process (and a new replica with an
    // empty data directory) refuse it, as the first process would have.
    git(['reset', '-q', '--hard', a]);
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    for (const dataDir of ['data', 'replica']) {
      await serve(dataDir, async (repo) => {
        await expect(repo.sync()).rejects.toMatchObject({ code: 'POLICY_INVALID', details: { head: a, applied: b } });
        expect(repo.commit).toBeNull();
      });
    }
    // A forward push (on top of B) is followed after the restart, and becomes the new floor.
    git(['reset', '-q', '--hard', b]);
    const c = commit('dev.policy.yaml', policy('dev', 'development'));
    await serve('data', async (repo) => {
      expect(await repo.sync()).toBe(true);
      expect(repo.commit).toBe(c);
      const store = new PolicyStore([repo.dir]);
      expect((await store.reload()).ok).toBe(true);
      expect(store.current!.policies.map((p) => p.name).sort()).toEqual(['dev', 'prod', 'staging']);
    });
    git(['reset', '-q', '--hard', b]);
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    await serve('replica', async (repo) => {
      await expect(repo.sync()).rejects.toMatchObject({ code: 'POLICY_INVALID', details: { head: b, applied: c } });
    });
  });
});
