/**
 * The long-lived git object reader and the incremental desired-state read built on it: trees read
 * in process, blobs parsed once by id, names unique across files, hostile names refused.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { commitParents, GitMirror } from '../../server/gitops/git.js';
import { GitObjectReader, parseTree } from '../../server/gitops/object-reader.js';
import { Reconciler } from '../../server/gitops/reconcile.js';
import { codeOfAsync } from '../support/error-code.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const app = (name: string, d: string) => `environments:\n  production:\n    apps:\n      ${name}:\n        bundle: 127.0.0.1:5000/acme/${name}@${d}\n`;

const gitEnv = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
const runGit = (work: string, args: string[]) => execFileSync('git', args, { cwd: work, encoding: 'utf8', env: gitEnv }).trim();

/** A bare repository (`origin`) and a work tree pushing to it, under `dir`. */
function initRepos(dir: string): { bare: string; work: string } {
  const bare = join(dir, 'desired.git');
  const work = join(dir, 'work');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
  execFileSync('git', ['init', '-q', '-b', 'main', work]);
  runGit(work, ['remote', 'add', 'origin', bare]);
  return { bare, work };
}

/** Writes the files in the work tree, commits them and pushes to origin's main; the new commit's id. */
function commitFiles(work: string, files: Record<string, string>, msg: string): string {
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(work, f, '..'), { recursive: true });
    writeFileSync(join(work, f), text);
  }
  runGit(work, ['add', '-A']);
  runGit(work, ['commit', '-qm', msg]);
  runGit(work, ['push', '-q', 'origin', 'HEAD:main']);
  return runGit(work, ['rev-parse', 'HEAD']);
}

describe('git object reader and incremental reconcile', () => {
  let dir: string;
  let work: string;
  let bare: string;
  let db: Db;
  let mirror: GitMirror;
  let reconciler: Reconciler;
  const deploys: string[] = [];
  const git = (args: string[]) => runGit(work, args);
  const commit = (files: Record<string, string>, msg: string) => commitFiles(work, files, msg);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ct-gitreader-'));
    ({ bare, work } = initRepos(dir));
    db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    mirror = new GitMirror(bare, join(dir, 'cache'));
    reconciler = new Reconciler(db, mirror, { branch: 'main', path: 'deploy', enqueueDeploy: async (a) => void deploys.push(`${a.app}@${a.digest.slice(7, 8)}`) });
  });
  afterAll(async () => {
    mirror.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads trees and blobs in one process: nested files with their ids, missing objects as null', async () => {
    const files: Record<string, string> = { 'README.md': 'not state' };
    for (let i = 0; i < 30; i++) files[`deploy/team-${i % 3}/app-${i}.yaml`] = app(`app-${i}`, digest('a'));
    const c1 = commit(files, 'thirty apps');
    const reader = new GitObjectReader(bare);
    try {
      const blobs = await reader.listBlobs(c1, 'deploy', (n) => n.endsWith('.yaml'));
      expect(blobs).toHaveLength(30);
      expect(blobs[0]).toEqual({ path: 'deploy/team-0/app-0.yaml', oid: git(['rev-parse', `${c1}:deploy/team-0/app-0.yaml`]) });
      expect((await reader.read(blobs[0].oid))?.data.toString()).toBe(app('app-0', digest('a')));
      expect(await reader.read('0'.repeat(40))).toBeNull();
      expect(await reader.read(`${c1}:no/such/file`)).toBeNull();
      expect(await codeOfAsync(reader.read('HEAD\n0000'))).toBe('USAGE');
      // Answers arrive in the order asked, many at once.
      const many = await Promise.all(blobs.map((b) => reader.read(b.oid)));
      expect(many.map((o) => o?.oid)).toEqual(blobs.map((b) => b.oid));
    } finally {
      reader.close();
    }
    expect(await codeOfAsync(reader.read(c1))).toBe('IO_ERROR');
    expect(() => parseTree(Buffer.from('100644 a\0short'))).toThrow(/malformed git tree/);
  });

  it('joins a large object once, not at every chunk git writes, and keeps other callers\' reads when one caller abandons its own', async () => {
    const text = 'y'.repeat(12 * 1024 * 1024);
    const small = 'small\n';
    const c = commit({ 'big/blob.txt': text, 'big/small.txt': small }, 'a large blob');
    const reader = new GitObjectReader(bare);
    const concat = jest.spyOn(Buffer, 'concat');
    try {
      const o = await reader.read(`${c}:big/blob.txt`);
      expect(o?.data.length).toBe(text.length);
      // git writes it in thousands of pipe chunks: joined once (plus at most a header's worth).
      expect(concat.mock.calls.length).toBeLessThanOrEqual(3);
      concat.mockRestore();
      // One caller abandons its reads; another's, asked in between, are asked again and answered.
      const mine = {};
      const a = reader.read(`${c}:big/blob.txt`, undefined, mine).then(() => 'answered', (e: Error) => e.message);
      const b = reader.read(`${c}:big/small.txt`);
      const d = reader.read(`${c}:big/blob.txt`, undefined, mine).then(() => 'answered', (e: Error) => e.message);
      reader.restart('enough', mine);
      expect(await a).toMatch(/abandoned: enough/);
      expect(await d).toMatch(/abandoned: enough/);
      expect((await b)?.data.toString()).toBe(small);
    } finally {
      concat.mockRestore();
      reader.close();
    }
  });

  it('a commit that changes one file of many deploys only that app; a name declared in two files is refused', async () => {
    const r1 = await reconciler.reconcile('t1');
    expect(r1.outcome).toBe('applied');
    expect(deploys).toHaveLength(30);
    deploys.length = 0;
    commit({ 'deploy/team-1/app-4.yaml': app('app-4', digest('b')) }, 'one app');
    expect((await reconciler.reconcile('t2')).outcome).toBe('applied');
    expect(deploys).toEqual(['app-4@b']);
    commit({ 'deploy/other/dup.yaml': app('app-7', digest('c')) }, 'duplicate');
    const dup = await reconciler.reconcile('t3');
    expect(dup).toMatchObject({ outcome: 'refused', reason: 'INVALID_STATE', message: "deploy/team-1/app-7.yaml: environments.production.apps.app-7: declared twice (also in deploy/other/dup.yaml)" });
    expect(deploys).toEqual(['app-4@b']);
  });

  it('reads a local repository in place: heads from loose and packed refs, ancestry walked in process, rewrites refused', async () => {
    const inPlace = new GitMirror(bare, join(dir, 'unused-cache'), { readInPlace: true });
    try {
      expect(inPlace.inPlace).toBe(true);
      expect(inPlace.dir).toBe(bare);
      const head = git(['rev-parse', 'HEAD']);
      expect(await inPlace.fetch('main')).toBe(head);
      execFileSync('git', ['--git-dir', bare, 'pack-refs', '--all']);
      expect(await inPlace.fetch('main')).toBe(head);
      const next = commit({ 'deploy/team-2/app-5.yaml': app('app-5', digest('d')) }, 'after packing');
      expect(await inPlace.fetch('main')).toBe(next);
      expect(await inPlace.isAncestor(head, next)).toBe(true);
      expect(await inPlace.isAncestor(next, head)).toBe(false);
      expect(await codeOfAsync(inPlace.fetch('no-such-branch'))).toBe('IO_ERROR');
      expect(await codeOfAsync(inPlace.fetch('../../etc'))).toBe('USAGE');
      // A history rewritten on the branch: the reconciler refuses what does not descend.
      const r = new Reconciler(db, inPlace, { branch: 'main', path: 'deploy', enqueueDeploy: async () => undefined });
      await db.run('DELETE FROM gitops_state');
      expect((await r.reconcile('in-place')).outcome).toBe('refused'); // the duplicate from the last test is still there
      git(['reset', '-q', '--hard', 'HEAD~2']);
      writeFileSync(join(work, 'deploy/team-0/app-0.yaml'), app('app-0', digest('e')));
      git(['commit', '-qam', 'rewrite']);
      git(['push', '-q', '--force', 'origin', 'HEAD:main']);
      const fixed = git(['rev-parse', 'HEAD']);
      await db.run("INSERT INTO gitops_state (repo, applied_sha, applied_at) VALUES (?, ?, ?)", [bare, next, Date.now()]);
      expect(await r.reconcile('rewritten')).toMatchObject({ outcome: 'refused', reason: 'NOT_DESCENDANT', commit: fixed });
    } finally {
      inPlace.close();
    }
  });
});

describe('tree listings remembered by tree id', () => {
  let dir: string;
  let work: string;
  let bare: string;
  const git = (args: string[]) => runGit(work, args);
  const commit = (files: Record<string, string>, msg: string) => commitFiles(work, files, msg);
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ct-gitlist-'));
    ({ bare, work } = initRepos(dir));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('counts only the parent lines git counts: an orphan commit with a parent header after committer is not a descendant', async () => {
    const applied = commit({ 'deploy/x.yaml': app('x', digest('a')) }, 'applied');
    const tree = execFileSync('git', ['-C', work, 'rev-parse', `${applied}^{tree}`], { encoding: 'utf8' }).trim();
    // No real parent: `parent <applied>` after committer is an unknown header to git (fsck --strict accepts it).
    const text = `tree ${tree}\nauthor a <a@b> 1700000000 +0000\ncommitter a <a@b> 1700000000 +0000\nparent ${applied}\n\nlooks like a child\n`;
    const orphan = execFileSync('git', ['-C', work, 'hash-object', '-t', 'commit', '-w', '--stdin'], { input: text, encoding: 'utf8' }).trim();
    execFileSync('git', ['-C', work, 'push', '-q', '--force', 'origin', `${orphan}:refs/heads/rewritten`]);
    expect(commitParents(Buffer.from(text))).toEqual([]);
    expect(commitParents(Buffer.from(`tree ${tree}\nparent ${applied}\nparent ${orphan}\nauthor a <a@b> 1 +0000\n\nm\n`))).toEqual([applied, orphan]);
    const m = new GitMirror(bare, join(dir, 'cache-parents'));
    try {
      await m.fetch('rewritten');
      expect(await m.isAncestor(applied, orphan)).toBe(false);
      expect(await m.isAncestor(applied, applied)).toBe(true);
      // Ids only: an option-looking string never reaches git.
      expect(await m.isAncestor('--octopus', orphan)).toBe(false);
    } finally {
      m.close();
    }
  });

  it('lists every commit as git ls-tree does while reusing the listings of unchanged subtrees', async () => {
    const reader = new GitObjectReader(bare);
    const lsTree = (c: string) => git(['ls-tree', '-r', c, '--', 'deploy']).split('\n').filter(Boolean).map((l) => {
      const [meta, path] = l.split('\t');
      return { path, oid: meta.split(' ')[2] };
    }).filter((b) => b.path.endsWith('.yaml')).sort((a, b) => (a.path < b.path ? -1 : 1));
    try {
      const files: Record<string, string> = {};
      for (let i = 0; i < 12; i++) files[`deploy/team-${i % 3}/app-${i}.yaml`] = app(`app-${i}`, digest('a'));
      const c0 = commit(files, 'twelve apps');
      expect(await reader.listBlobs(c0, 'deploy', (n) => n.endsWith('.yaml'))).toEqual(lsTree(c0));
      const steps: Record<string, string>[] = [
        { 'deploy/team-1/app-1.yaml': app('app-1', digest('b')) },
        { 'deploy/team-1/deeper/extra.yaml': app('extra', digest('c')), 'deploy/team-2/notes.txt': 'x' },
        { 'deploy/top.yaml': app('top', digest('d')) },
      ];
      for (const files of steps) {
        const c = commit(files, 'step');
        expect(await reader.listBlobs(c, 'deploy', (n) => n.endsWith('.yaml'))).toEqual(lsTree(c));
      }
      // A removed file and directory, then the first commit again: each listing is its own commit's.
      git(['rm', '-rq', 'deploy/team-1/deeper']);
      git(['commit', '-qm', 'rm']);
      git(['push', '-q', 'origin', 'HEAD:main']);
      const removed = git(['rev-parse', 'HEAD']);
      expect(await reader.listBlobs(removed, 'deploy', (n) => n.endsWith('.yaml'))).toEqual(lsTree(removed));
      const first = git(['rev-list', '--max-parents=0', 'HEAD']);
      expect(await reader.listBlobs(first, 'deploy', (n) => n.endsWith('.yaml'))).toEqual(lsTree(first));
    } finally {
      reader.close();
    }
  });

});
