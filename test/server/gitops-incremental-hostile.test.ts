/**
 * The incremental reconcile (server/gitops/tree-diff.ts, reconcile.ts readChanged) against a whole
 * read of the same commit, on trees built with git's plumbing: names that are bytes, not UTF-8;
 * modes; files of other kinds counted towards the file limit. A hostile review found the first and
 * the last diverging (an app the repository declares never deployed; a commit a whole read refuses
 * applied, and every later one refused after a restart).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { desiredRepo } from './desired-repo.js';
import { execFileSync } from 'node:child_process';
import type { Db } from '../../server/store/db.js';
import type { GitMirror } from '../../server/gitops/git.js';
import { Reconciler } from '../../server/gitops/reconcile.js';

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const file = (env: string, name: string, n: number) => `environments:\n  ${env}:\n    apps:\n      ${name}:\n        bundle: 127.0.0.1:5000/acme/${name}@${digest(n)}\n        hosts: { env: ${env} }\n`;

describe('the incremental reconcile against a whole read of hostile trees', () => {
  let repo: Awaited<ReturnType<typeof desiredRepo>> | undefined;
  let work: string, db: Db, mirror: GitMirror, r: Reconciler;
  let deploys: string[] = [];
  const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
  const git = (args: string[], input?: string | Buffer) => execFileSync('git', args, { cwd: work, env, input, maxBuffer: 1 << 28 }).toString().trim();
  const blob = (text: string) => git(['hash-object', '-w', '--stdin'], text);
  /** Adds index entries (raw byte paths) and commits + pushes. */
  const commit = (entries: [Buffer | string, string][], mode = '100644', rm: string[] = []) => {
    if (rm.length) git(['update-index', '--force-remove', ...rm]);
    const parts: Buffer[] = [];
    for (const [p, oid] of entries) parts.push(Buffer.concat([Buffer.from(`${mode} ${oid}\t`), Buffer.isBuffer(p) ? p : Buffer.from(p), Buffer.from([0])]));
    git(['update-index', '-z', '--add', '--index-info'], Buffer.concat(parts));
    const tree = git(['write-tree']);
    let parent: string[] = [];
    try { parent = ['-p', git(['rev-parse', 'HEAD'])]; } catch { /* first */ }
    const c = git(['commit-tree', tree, ...parent, '-m', 'x']);
    git(['update-ref', 'HEAD', c]);
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    return c;
  };
  const fresh = () => new Reconciler(db, mirror, { branch: 'main', path: 'deploy', enqueueDeploy: async () => undefined });

  beforeAll(async () => {
    repo = await desiredRepo('ct-gitops-hostile-');
    ({ work, db, mirror } = repo);
    r = new Reconciler(db, mirror, { branch: 'main', path: 'deploy', enqueueDeploy: async (a) => void deploys.push(`${a.environment}/${a.app}@${a.bundle.slice(-4)}`) });
    commit([['deploy/production/base.yaml', blob(file('production', 'base', 1))]]);
    expect((await r.reconcile('t')).outcome).toBe('applied');
  });
  afterAll(async () => {
    await repo?.close();
  });

  it('two file names that read alike (not UTF-8) are refused, as a whole read refuses them, and nothing of them is deployed', async () => {
    commit([[Buffer.concat([Buffer.from('deploy/production/'), Buffer.from([0xff]), Buffer.from('.yaml')]), blob(file('production', 'x', 2))]]);
    deploys = [];
    expect((await r.reconcile('t')).outcome).toBe('applied');
    // A second name decoding to the same text: a map by name kept one of the two and missed y.
    const head = commit([[Buffer.concat([Buffer.from('deploy/production/'), Buffer.from([0xfe]), Buffer.from('.yaml')]), blob(file('production', 'y', 3))]]);
    deploys = [];
    const out = await r.reconcile('t');
    const full = await fresh().stateAt(head).then(() => 'read', (e: { code?: string }) => e.code);
    expect([out.outcome, full, deploys]).toEqual(['refused', 'MANIFEST_INVALID', []]);
    // Back to one of them (the entry removed by its bytes): applied again, y never deployed.
    git(['update-index', '-z', '--index-info'], Buffer.concat([Buffer.from(`0 ${'0'.repeat(40)}\t`), Buffer.from('deploy/production/'), Buffer.from([0xfe]), Buffer.from('.yaml'), Buffer.from([0])]));
    commit([['deploy/production/base.yaml', blob(file('production', 'base', 9))]]);
    deploys = [];
    expect([(await r.reconcile('t')).outcome, deploys]).toEqual(['applied', ['production/base@0009']]);
  });

  it('mode changes, a symlink or a gitlink with a file\'s blob, a file become a directory: as a whole read', async () => {
    const check = async (head: string, _label: string) => {
      deploys = [];
      const o = await r.reconcile('t');
      const full = await fresh().stateAt(head).then((s) => s.apps.map((x) => `${x.app}:${x.file}`), (e: Error) => `refused: ${e.message}`);
      const mine = o.outcome === 'applied' ? (await r.appliedState()).apps.map((x) => `${x.app}:${x.file}`) : `refused: ${(o as { message?: string }).message}`;
      expect(mine).toEqual(full);
    };
    const m = blob(file('production', 'm', 7));
    await check(commit([['deploy/production/m.yaml', m]]), 'add m');
    await check(commit([['deploy/production/m.yaml', m]], '100755'), 'exec bit');
    await check(commit([['deploy/production/m.yaml', m]], '120000'), 'symlink same blob');
    await check(commit([['deploy/production/m.yaml/inner.yaml', m]], '100644', ['deploy/production/m.yaml']), 'file->dir');
    await check(commit([['deploy/production/m.yaml', m]], '160000', ['deploy/production/m.yaml/inner.yaml']), 'dir->gitlink');
  });

  it('100,001 files of other kinds with one app: refused, as a whole read refuses them', async () => {
    const junk = blob('junk\n');
    const entries: [string, string][] = [];
    for (let i = 0; i <= 100_000; i++) entries.push([`deploy/docs/f${i}.md`, junk]);
    entries.push(['deploy/production/z.yaml', blob(file('production', 'z', 4))]);
    const head = commit(entries);
    deploys = [];
    const b = await r.reconcile('t');
    const full = await fresh().stateAt(head).then((s) => s.apps.map((x) => x.app), (e: Error) => `refused: ${e.message}`);
    // Counted as the whole read counts them: every regular file, YAML or not.
    expect([b.outcome, typeof full === 'string' && full.startsWith('refused'), deploys]).toEqual(['refused', true, []]);
  }, 120_000);
});


