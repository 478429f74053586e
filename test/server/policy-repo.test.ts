import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PolicyRepo, isGitSource } from '../../server/gitops/policy-repo.js';
import { PolicyStore } from '../../src/policy/store.js';

const policy = (name: string, env: string) =>
  `apiVersion: cerro-torre.dev/v2\nkind: Policy\nname: ${name}\nmode: strict\nmatch:\n  environments: [${env}]\nsigners:\n  - role: builders\nlogQuorum: 1\n`;

describe('policy repository followed by git', () => {
  let dir: string;
  let work: string;
  let bare: string;
  const git = (args: string[]) => execFileSync('git', args, { cwd: work, encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' } }).trim();
  const commit = (file: string, text: string) => {
    writeFileSync(join(work, file), text);
    git(['add', '.']);
    git(['commit', '-qm', file]);
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    return git(['rev-parse', 'HEAD']);
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ct-polrepo-'));
    bare = join(dir, 'policies.git');
    work = join(dir, 'work');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    mkdirSync(work);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    git(['remote', 'add', 'origin', bare]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('recognises git sources', () => {
    expect(isGitSource(bare)).toBe(true);
    expect(isGitSource('https://github.com/acme/policies')).toBe(true);
    expect(isGitSource('git@github.com:acme/policies.git')).toBe(true);
    expect(isGitSource('policies')).toBe(false);
  });

  it('checks out the head, keeps the last good set on a broken push, and refuses a rewritten history', async () => {
    const first = commit('prod.policy.yaml', policy('prod', 'production'));
    const repo = new PolicyRepo(bare, join(dir, 'data'));
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
