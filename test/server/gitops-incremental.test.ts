/**
 * The reconcile derives a commit's desired state from the applied one's by the files that differ
 * (#14 target 7). Whatever the change (one app, a removal, a rename, an app moved to another
 * environment or file, a name declared twice, a rewind), it deploys what a full read would and its
 * state equals a fresh reconciler's full read of the same commit; a one-app change reads that
 * app's file and the trees on its path, nothing else.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { desiredRepo } from './desired-repo.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Db } from '../../server/store/db.js';
import type { GitMirror } from '../../server/gitops/git.js';
import { Reconciler } from '../../server/gitops/reconcile.js';

const ENVS = ['development', 'staging', 'production'];
const APPS = 20;
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const app = (env: string, name: string, n: number) => `      ${name}:\n        bundle: 127.0.0.1:5000/acme/${name}@${digest(n)}\n        hosts: { env: ${env} }\n`;
const file = (env: string, ...apps: [string, number][]) => `environments:\n  ${env}:\n    apps:\n${apps.map(([a, n]) => app(env, a, n)).join('')}`;

describe('GitOps reconcile, incremental', () => {
  let repo: Awaited<ReturnType<typeof desiredRepo>> | undefined;
  let work: string;
  let db: Db;
  let mirror: GitMirror;
  let r: Reconciler;
  let deploys: string[] = [];
  const reads: string[] = [];
  const git = (args: string[]) => execFileSync('git', args, { cwd: work, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' } }).trim();
  const write = (path: string, text: string) => {
    mkdirSync(join(work, 'deploy', path, '..'), { recursive: true });
    writeFileSync(join(work, 'deploy', path), text);
  };
  const push = () => {
    git(['add', '-A']);
    git(['commit', '-qm', 'x']);
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    return git(['rev-parse', 'HEAD']);
  };
  /** Reconciles, and checks the applied state against a full read by a reconciler that never saw it. */
  const reconcile = async () => {
    deploys = [];
    reads.length = 0;
    const out = await r.reconcile('test');
    const mine = [...reads];
    const head = git(['rev-parse', 'HEAD']);
    const fresh = new Reconciler(db, mirror, { branch: 'main', path: 'deploy', enqueueDeploy: async () => undefined });
    const full = await fresh.stateAt(head).catch((e: unknown) => e);
    if (out.outcome === 'applied') {
      const mine = await r.appliedState();
      expect(mine.apps).toEqual((full as { apps: unknown }).apps);
      expect(mine.promotions).toEqual((full as { promotions: unknown }).promotions);
    }
    return { out, full, reads: mine };
  };

  beforeAll(async () => {
    repo = await desiredRepo('ct-gitops-incremental-');
    ({ work, db, mirror } = repo);
    const read = mirror.reader.read.bind(mirror.reader);
    mirror.reader.read = (name: string, maxBytes?: number, owner?: object) => (reads.push(name), read(name, maxBytes, owner));
    r = new Reconciler(db, mirror, { branch: 'main', path: 'deploy', enqueueDeploy: async (a) => void deploys.push(`${a.environment}/${a.app}`) });
    for (const env of ENVS) for (let i = 0; i < APPS; i++) write(`${env}/app-${i}.yaml`, file(env, [`app-${i}`, 1]));
    push();
    const { out } = await reconcile();
    expect(out.outcome).toBe('applied');
    expect(deploys).toHaveLength(ENVS.length * APPS);
  });
  afterAll(async () => {
    await repo?.close();
  });

  it("a change to one app reads that app's file and the trees on its path, and deploys that app only", async () => {
    write('production/app-7.yaml', file('production', ['app-7', 2]));
    const head = push();
    const { out, reads } = await reconcile();
    expect(out.outcome).toBe('applied');
    expect(deploys).toEqual(['production/app-7']);
    const blobs = ENVS.flatMap((env) => Array.from({ length: APPS }, (_x, i) => git(['rev-parse', `${head}:deploy/${env}/app-${i}.yaml`])));
    expect(reads.filter((n) => blobs.includes(n))).toEqual([git(['rev-parse', `${head}:deploy/production/app-7.yaml`])]);
    // The other environments' directories are the same trees: not read again.
    expect(reads).not.toContain(git(['rev-parse', `${head}:deploy/staging`]));
    expect(reads).not.toContain(git(['rev-parse', `${head}:deploy/development`]));
  });

  it('a removed file removes its apps from the state, deploying nothing', async () => {
    rmSync(join(work, 'deploy', 'staging', 'app-3.yaml'));
    push();
    await reconcile();
    expect(deploys).toEqual([]);
    expect((await r.appliedState()).apps.map((a) => `${a.environment}/${a.app}`)).not.toContain('staging/app-3');
    // Declared again: deployed again.
    write('staging/app-3.yaml', file('staging', ['app-3', 1]));
    push();
    await reconcile();
    expect(deploys).toEqual(['staging/app-3']);
  });

  it('a renamed file deploys nothing; an app moved to another file with a change, or to another environment, deploys', async () => {
    renameSync(join(work, 'deploy', 'production', 'app-1.yaml'), join(work, 'deploy', 'production', 'renamed.yml'));
    push();
    await reconcile();
    expect(deploys).toEqual([]);
    expect((await r.appliedState()).apps.find((a) => a.app === 'app-1' && a.environment === 'production')?.file).toBe('deploy/production/renamed.yml');

    rmSync(join(work, 'deploy', 'production', 'renamed.yml'));
    write('production/app-2.yaml', file('production', ['app-2', 1], ['app-1', 5]));
    push();
    await reconcile();
    expect(deploys).toEqual(['production/app-1']);

    // development/app-4 becomes staging/app-4 (a name staging did not have): the new name deploys.
    rmSync(join(work, 'deploy', 'development', 'app-4.yaml'));
    write('staging/extra/app-4.yaml', file('staging', ['app-4b', 1]));
    push();
    await reconcile();
    expect(deploys).toEqual(['staging/app-4b']);
  });

  it('a name declared twice is refused as a full read refuses it, and the applied state stays', async () => {
    const applied = await r.appliedCommit();
    write('production/dup.yaml', file('production', ['app-9', 1]));
    push();
    const { out, full } = await reconcile();
    expect(out).toMatchObject({ outcome: 'refused', reason: 'INVALID_STATE', code: 'MANIFEST_INVALID', message: (full as Error).message });
    expect(deploys).toEqual([]);
    expect(await r.appliedCommit()).toBe(applied);
    rmSync(join(work, 'deploy', 'production', 'dup.yaml'));
    write('production/app-9.yaml', file('production', ['app-9', 3]));
    push();
    await reconcile();
    expect(deploys).toEqual(['production/app-9']);
  });

  it('a rewind is refused; the whole directory removed empties the state', async () => {
    const applied = await r.appliedCommit();
    git(['push', '-q', '--force', 'origin', `${applied}~1:refs/heads/main`]);
    expect((await r.reconcile('test')).outcome).toBe('refused');
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    rmSync(join(work, 'deploy'), { recursive: true });
    push();
    await reconcile();
    expect(deploys).toEqual([]);
    expect((await r.appliedState()).apps).toEqual([]);
    write('production/app-0.yaml', file('production', ['app-0', 1]));
    push();
    await reconcile();
    expect(deploys).toEqual(['production/app-0']);
  });
});
