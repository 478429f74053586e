import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { GitMirror } from '../../server/gitops/git.js';
import { Reconciler } from '../../server/gitops/reconcile.js';
import type { DesiredApp } from '../../server/gitops/desired-state.js';
import { MAX_MESSAGE_CHARS, type CommitInfo } from '../../server/gitops/commit-info.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const state = (d: string) => `environments:\n  production:\n    apps:\n      hello:\n        bundle: 127.0.0.1:5000/acme/hello@${d}\n        hosts: { env: production }\n`;

describe('GitOps reconcile', () => {
  let dir: string;
  let bare: string;
  let work: string;
  let db: Db;
  const deploys: [string, string, string][] = [];
  const infos: (CommitInfo | undefined)[] = [];
  let reconciler: Reconciler;
  const git = (args: string[], cwd = work) => execFileSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' } }).trim();
  const commit = (text: string, msg: string) => {
    writeFileSync(join(work, 'deploy', 'state.yaml'), text);
    git(['add', '.']);
    git(['commit', '-qm', msg]);
    git(['push', '-q', 'origin', 'HEAD:main', '--force']);
    return git(['rev-parse', 'HEAD']);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ct-gitops-'));
    bare = join(dir, 'desired.git');
    work = join(dir, 'work');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    execFileSync('mkdir', ['-p', join(work, 'deploy')]);
    git(['remote', 'add', 'origin', bare]);
    db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    reconciler = new Reconciler(db, new GitMirror(bare, join(dir, 'cache')), {
      branch: 'main',
      path: 'deploy',
      enqueueDeploy: async (a: DesiredApp, c: string, info?: CommitInfo) => void (deploys.push([c, `${a.environment}/${a.app}`, a.digest]), infos.push(info)),
    });
  });
  afterAll(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('applies a new commit, then only changes, and refuses a history that does not descend', async () => {
    const c1 = commit(state(digest('a')), 'one');
    expect(await reconciler.reconcile('test')).toMatchObject({ outcome: 'applied', commit: c1 });
    expect(deploys).toEqual([[c1, 'production/hello', digest('a')]]);
    expect(await reconciler.reconcile('test')).toMatchObject({ outcome: 'up-to-date' });

    const c2 = commit(state(digest('b')), 'two');
    expect(await reconciler.reconcile('test')).toMatchObject({ outcome: 'applied', commit: c2, previous: c1 });
    expect(deploys.at(-1)).toEqual([c2, 'production/hello', digest('b')]);

    // Someone force-pushes the old commit back: a replayed trigger must not roll back.
    git(['reset', '-q', '--hard', c1]);
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    const r = await reconciler.reconcile('replayed webhook');
    expect(r).toMatchObject({ outcome: 'refused', reason: 'NOT_DESCENDANT', commit: c1 });
    expect(deploys).toHaveLength(2);
    expect(await reconciler.appliedCommit()).toBe(c2);

    // A revert commit on top of the applied one is the sanctioned way back.
    git(['reset', '-q', '--hard', c2]);
    const c3 = commit(state(digest('a')), 'revert to a');
    expect(await reconciler.reconcile('test')).toMatchObject({ outcome: 'applied', commit: c3 });
    expect(deploys.at(-1)).toEqual([c3, 'production/hello', digest('a')]);

    const rows = await db.query<{ outcome: string }>('SELECT outcome FROM reconciles ORDER BY time');
    expect(rows.map((x) => x.outcome)).toEqual(['applied', 'up-to-date', 'applied', 'refused:NOT_DESCENDANT', 'applied']);
  });

  it("hands each deploy the commit's author and message: untrusted text, bounded, control characters dropped", async () => {
    expect(infos[0]).toEqual({ author: 't <t@e>', message: 'one' });
    const hostile = `<img src=x onerror=alert(1)> deploy\u001b[31m red\u202e\n\n${'body '.repeat(1000)}`;
    writeFileSync(join(dir, 'msg'), hostile);
    writeFileSync(join(work, 'deploy', 'state.yaml'), state(digest('c')));
    git(['add', '.']);
    execFileSync('git', ['commit', '-q', '--cleanup=verbatim', '-F', join(dir, 'msg')], { cwd: work, env: { ...process.env, GIT_AUTHOR_NAME: 'Mallory &amp; co', GIT_AUTHOR_EMAIL: 'm@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' } });
    git(['push', '-q', 'origin', 'HEAD:main']);
    expect(await reconciler.reconcile('test')).toMatchObject({ outcome: 'applied' });
    const info = infos.at(-1)!;
    expect(info.author).toBe('Mallory &amp; co <m@e>');
    expect(info.message.startsWith('<img src=x onerror=alert(1)> deploy[31m red\n\nbody body')).toBe(true);
    expect(info.message).toHaveLength(MAX_MESSAGE_CHARS);
    expect(info.message.endsWith('…')).toBe(true);
  });

  it('refuses a desired state that is not pinned by digest, keeping the applied commit', async () => {
    const applied = await reconciler.appliedCommit();
    commit('environments:\n  production:\n    apps:\n      hello:\n        bundle: 127.0.0.1:5000/acme/hello:latest\n', 'tag only');
    expect(await reconciler.reconcile('test')).toMatchObject({ outcome: 'refused', reason: 'INVALID_STATE' });
    expect(await reconciler.appliedCommit()).toBe(applied);
  });
});

describe('GitOps with signed commits required', () => {
  it('applies only heads signed by an allowed SSH key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-gitops-sig-'));
    const bare = join(dir, 'desired.git');
    const work = join(dir, 'work');
    const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
    const git = (args: string[]) => execFileSync('git', args, { cwd: work, encoding: 'utf8', env }).trim();
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    execFileSync('mkdir', ['-p', join(work, 'deploy')]);
    git(['remote', 'add', 'origin', bare]);
    for (const k of ['allowed', 'other']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', k, '-f', join(dir, k)]);
    const pub = execFileSync('cat', [join(dir, 'allowed.pub')], { encoding: 'utf8' }).trim();
    writeFileSync(join(dir, 'allowed_signers'), `t@e ${pub}\n`);
    const commit = (text: string, key: string | null) => {
      writeFileSync(join(work, 'deploy', 'state.yaml'), text);
      git(['add', '.']);
      git(key ? ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${join(dir, key)}`, 'commit', '-q', '-S', '-m', 'x'] : ['commit', '-q', '-m', 'x']);
      git(['push', '-q', 'origin', 'HEAD:main']);
      return git(['rev-parse', 'HEAD']);
    };
    const db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    const deploys: string[] = [];
    const infos: (CommitInfo | undefined)[] = [];
    const r = new Reconciler(db, new GitMirror(bare, join(dir, 'cache')), {
      branch: 'main', path: 'deploy', allowedSignersFile: join(dir, 'allowed_signers'),
      enqueueDeploy: async (a, _c, info) => void (deploys.push(a.digest), infos.push(info)),
    });
    try {
      const signed = commit(state(digest('a')), 'allowed');
      expect(await r.reconcile('t')).toMatchObject({ outcome: 'applied', commit: signed });
      commit(state(digest('b')), 'other');
      expect(await r.reconcile('t')).toMatchObject({ outcome: 'refused', reason: 'UNSIGNED_COMMIT' });
      commit(state(digest('c')), null);
      expect(await r.reconcile('t')).toMatchObject({ outcome: 'refused', reason: 'UNSIGNED_COMMIT' });
      expect(deploys).toEqual([digest('a')]);
      // The signature header (multi-line) does not confuse the author and message.
      expect(infos).toEqual([{ author: 't <t@e>', message: 'x' }]);
      expect(await r.appliedCommit()).toBe(signed);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
