/** Promotion against the GitLab stand-in through the real Gitbeaker client. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { PROJECT_ID, startGitlabRepo, type GitlabRepo } from '../support/gitlab-repo.js';
import { gitlabForge } from '../../src/promote/gitlab.js';
import { promote } from '../../src/promote/promote.js';
import { promotionEvidence } from '../../src/promote/evidence.js';
import { codeOfAsync } from '../support/error-code.js';
import { buildFixture, desiredState, type Built, type PromoteFixture } from './fixtures.js';

let fx: PromoteFixture;
let gl: GitlabRepo;
const FILE = 'deploy/desired.yaml';

beforeAll(async () => {
  fx = await buildFixture();
  gl = await startGitlabRepo({ token: 'glpat-test', project: 'acme/deploy', files: { [FILE]: desiredState(fx.v1.reference, fx.v1.reference) } });
});
afterAll(async () => {
  await gl.close();
  await fx.cleanup();
});

const forge = (token = 'glpat-test') => gitlabForge({ apiUrl: gl.url, allowedAddresses: ['127.0.0.1'], token, project: 'acme/deploy' });
const ev = (b: Built) => () => promotionEvidence({ candidate: b.path, trust: fx.trust, policies: fx.policies, environment: 'staging', current: { path: fx.v1.path, reference: fx.v1.reference } });
const input = (b: Built) => ({ environment: 'staging', app: 'hello', bundle: b.reference, file: FILE });

describe('promotion merge request on GitLab', () => {
  it('opens one merge request changing exactly the digest line, rerun changes nothing, a newer bundle updates it', async () => {
    const before = gl.file('main', FILE)!;
    const r = await promote(input(fx.v2), forge(), ev(fx.v2));
    expect(gl.errors).toEqual([]);
    expect(r).toMatchObject({ outcome: 'opened', branch: 'ct-promote/staging/hello', allow: true });
    expect(gl.mrs).toHaveLength(1);
    const after = gl.file('ct-promote/staging/hello', FILE)!;
    expect(after).toBe(before.replace(fx.v1.reference, fx.v2.reference));
    expect(gl.mrs[0].description).toContain('- `busybox 1.36.1 → 1.37.0`');
    expect(gl.statuses.at(-1)).toMatchObject({ status: 'success', name: 'cerro-torre/promote/staging' });

    const writes = () => gl.requests.filter((q) => q.method !== 'GET').length;
    const n = writes();
    expect((await promote(input(fx.v2), forge(), ev(fx.v2))).outcome).toBe('unchanged');
    expect(writes()).toBe(n);

    gl.push('ct-promote/staging/hello', FILE, gl.file('ct-promote/staging/hello', FILE)!.replace('# the greeter', '# the greeter, reviewed'));
    const newer = await promote(input(fx.v3), forge(), ev(fx.v3));
    expect(newer).toMatchObject({ outcome: 'updated', change: { number: 1 } });
    expect(gl.mrs).toHaveLength(1);
    expect(gl.file('ct-promote/staging/hello', FILE)).toContain('# the greeter, reviewed');
    expect(gl.file('ct-promote/staging/hello', FILE)).toContain(fx.v3.reference);
    expect(gl.errors).toEqual([]);
  });

  it('a branch left behind by a closed merge request starts over from main (deleted and made again: GitLab has no forced update)', async () => {
    const branch = 'ct-promote/staging/hello';
    // The merge request of the test above is closed without merging; its branch stays.
    Object.assign(gl.mrs[0], { state: 'merged', sha: gl.head(branch) });
    gl.requests.length = 0;
    const r = await promote(input(fx.v2), forge(), ev(fx.v2));
    expect(r).toMatchObject({ outcome: 'opened', change: { number: 2 } });
    expect(gl.file(branch, FILE)).toBe(gl.file('main', FILE)!.replace(fx.v1.reference, fx.v2.reference));
    expect(gl.file(branch, FILE)).not.toContain('# the greeter, reviewed');
    expect(gl.requests.filter((q) => q.method !== 'GET').map((q) => `${q.method} ${q.path.replace(/^.*\/projects\/[^/]+/, '')}`).slice(0, 2))
      .toEqual([`DELETE /repository/branches/${encodeURIComponent(branch)}`, 'POST /repository/branches']);
    expect(gl.errors).toEqual([]);
  });

  it('a commit pushed to the branch after its merge request was merged is kept: the branch is not deleted', async () => {
    const branch = 'ct-promote/staging/hello';
    // The merge request of the test above is merged; then someone pushes to its branch.
    Object.assign(gl.mrs[1], { state: 'merged', sha: gl.head(branch) });
    gl.push(branch, 'NOTES.md', 'work nobody reviewed yet\n');
    gl.requests.length = 0;
    const r = await promote(input(fx.v3), forge(), ev(fx.v3));
    expect(r).toMatchObject({ outcome: 'opened', change: { number: 3 } });
    expect(gl.file(branch, 'NOTES.md')).toBe('work nobody reviewed yet\n');
    expect(gl.file(branch, FILE)).toContain(fx.v3.reference);
    expect(gl.requests.filter((q) => q.method === 'DELETE')).toEqual([]);
    expect(gl.errors).toEqual([]);
  });

  it('the GitLab API URL passes the URL guard: a loopback stand-in not allowed is refused, nothing sent', async () => {
    const n = gl.requests.length;
    const f = gitlabForge({ apiUrl: gl.url, token: 'glpat-test', project: 'acme/deploy' });
    expect(await codeOfAsync(promote(input(fx.v2), f, ev(fx.v2)))).toBe('PROMOTE_URL_NOT_ALLOWED');
    await f.close?.();
    expect(gl.requests.length).toBe(n);
  });

  it('a rejected token is PROMOTE_TOKEN_REJECTED', async () => {
    expect(await codeOfAsync(promote(input(fx.v2), forge('expired'), ev(fx.v2)))).toBe('PROMOTE_TOKEN_REJECTED');
  });

  it('two promotions racing: the one whose open meets GitLab\'s 409 updates the merge request when its commit is on top, no error and no second one', async () => {
    const prod = (b: Built) => ({ environment: 'production', app: 'hello', bundle: b.reference, file: FILE });
    const errors = gl.errors.length;
    const f = forge();
    let raced = false;
    const racing = { ...f, writeFile: async (...a: Parameters<typeof f.writeFile>) => {
      if (!raced) {
        raced = true;
        expect((await promote(prod(fx.v3), forge(), ev(fx.v3))).outcome).toBe('opened');
      }
      return f.writeFile(...a);
    } };
    expect((await promote(prod(fx.v2), racing, ev(fx.v2))).outcome).toBe('updated');
    const mine = gl.mrs.filter((m) => m.source_branch === 'ct-promote/production/hello');
    expect(mine).toHaveLength(1);
    expect(gl.file('ct-promote/production/hello', FILE)).toContain(fx.v2.reference);
    expect(mine[0].description).toContain(`| to | \`${fx.v2.reference}\` |`);
    // What the stand-in refused is what GitLab would: the stale write and the second open.
    expect(gl.errors.slice(errors).map((e) => e.split(': ')[1].split(' ')[0])).toEqual(['You', 'Another']);
  });
});

describe('a fork\'s merge request with the promotion branch\'s name', () => {
  let fk: GitlabRepo;
  const branch = 'ct-promote/staging/hello';
  const theirs = 'f'.repeat(40);
  beforeAll(async () => {
    fk = await startGitlabRepo({ token: 'glpat-test', project: 'acme/deploy', files: { [FILE]: desiredState(fx.v1.reference, fx.v1.reference) } });
    // GitLab lists a fork's merge request under the project it targets; this one is listed first.
    fk.mrs.push({ iid: 1, source_branch: branch, target_branch: 'main', title: 'innocent', description: 'attacker text', state: 'opened', sha: theirs, source_project_id: PROJECT_ID + 41 });
  });
  afterAll(() => fk.close());
  const forkForge = () => gitlabForge({ apiUrl: fk.url, allowedAddresses: ['127.0.0.1'], token: 'glpat-test', project: 'acme/deploy' });

  it('is never taken for ours: our own merge request is opened and updated, the fork\'s untouched, no status on its head', async () => {
    expect(await promote(input(fx.v2), forkForge(), ev(fx.v2))).toMatchObject({ outcome: 'opened', change: { number: 2 } });
    // The next run finds our own merge request; before, it took the fork's (list[0]), rewrote its
    // title and description with the evidence and posted a success status on the fork's head.
    const again = await promote(input(fx.v2), forkForge(), ev(fx.v2));
    expect(again).toMatchObject({ outcome: 'unchanged', change: { number: 2, headSha: fk.head(branch) } });
    expect(await promote(input(fx.v3), forkForge(), ev(fx.v3))).toMatchObject({ outcome: 'updated', change: { number: 2 } });
    expect(fk.mrs[0]).toMatchObject({ title: 'innocent', description: 'attacker text' });
    expect(fk.mrs[1].description).toContain(fx.v3.reference);
    expect(fk.statuses.filter((x) => x.sha === theirs)).toEqual([]);
    expect(fk.requests.filter((q) => q.method === 'PUT' && q.path.includes('/merge_requests/')).map((q) => q.path.split('/').at(-1))).toEqual(['2']);
    expect(fk.errors).toEqual([]);
  });

  it('ended with its head equal to our branch\'s, it does not make our branch one that outlived its change: a commit pushed since is kept', async () => {
    Object.assign(fk.mrs[1], { state: 'closed', sha: fk.head(branch) });
    fk.push(branch, 'NOTES.md', 'work nobody reviewed yet\n');
    // A fork can hold our commits: its merge request, closed, names our branch's head.
    Object.assign(fk.mrs[0], { state: 'closed', sha: fk.head(branch) });
    fk.requests.length = 0;
    expect(await promote(input(fx.v2), forkForge(), ev(fx.v2))).toMatchObject({ outcome: 'opened', change: { number: 3 } });
    expect(fk.file(branch, 'NOTES.md')).toBe('work nobody reviewed yet\n');
    expect(fk.requests.filter((q) => q.method === 'DELETE')).toEqual([]);
    expect(fk.errors).toEqual([]);
  });
});

describe('forks\' merge requests newer than ours, more than a page of them', () => {
  // GitLab lists merge requests newest first, at most 100 to a page; anyone can fork the project
  // and open (and close) merge requests from a branch named ct-promote/staging/hello.
  let mn: GitlabRepo;
  const branch = 'ct-promote/staging/hello';
  beforeAll(async () => {
    mn = await startGitlabRepo({ token: 'glpat-test', project: 'acme/deploy', files: { [FILE]: desiredState(fx.v1.reference, fx.v1.reference) } });
  });
  afterAll(() => mn.close());
  const manyForge = () => gitlabForge({ apiUrl: mn.url, allowedAddresses: ['127.0.0.1'], token: 'glpat-test', project: 'acme/deploy' });
  const forks = (n: number, state: 'opened' | 'closed') => {
    for (let i = 0; i < n; i++) {
      mn.mrs.push({ iid: mn.mrs.length + 1, source_branch: branch, target_branch: 'main', title: `fork ${i}`, description: '', state, sha: 'e'.repeat(40), source_project_id: PROJECT_ID + 100 + i });
    }
  };

  it('our open merge request is found past 150 forks\' open ones: updated, no second one opened', async () => {
    expect(await promote(input(fx.v2), manyForge(), ev(fx.v2))).toMatchObject({ outcome: 'opened', change: { number: 1 } });
    forks(150, 'opened');
    // Before, only the first page (the forks' 100 newest) was read: ours was missed and another opened.
    expect(await promote(input(fx.v2), manyForge(), ev(fx.v2))).toMatchObject({ outcome: 'unchanged', change: { number: 1 } });
    expect(await promote(input(fx.v3), manyForge(), ev(fx.v3))).toMatchObject({ outcome: 'updated', change: { number: 1 } });
    expect(mn.mrs.filter((m) => m.source_project_id === undefined)).toHaveLength(1);
    expect(mn.mrs[0].description).toContain(fx.v3.reference);
    expect(mn.errors).toEqual([]);
  });

  it('our merged merge request is found past 150 forks\' closed ones: its branch starts over from main', async () => {
    mn.push(branch, 'NOTES.md', 'reviewed in the merge request\n');
    Object.assign(mn.mrs[0], { state: 'merged', sha: mn.head(branch) });
    for (const m of mn.mrs.slice(1)) m.state = 'closed';
    forks(150, 'closed');
    mn.requests.length = 0;
    // Before, our merged one was off the page: the branch was reused, carrying its old history.
    const r = await promote(input(fx.v2), manyForge(), ev(fx.v2));
    expect(r).toMatchObject({ outcome: 'opened' });
    expect(mn.file(branch, 'NOTES.md')).toBeUndefined();
    expect(mn.file(branch, FILE)).toBe(mn.file('main', FILE)!.replace(fx.v1.reference, fx.v2.reference));
    expect(mn.requests.filter((q) => q.method === 'DELETE').map((q) => q.path)).toEqual([`/api/v4/projects/acme%2Fdeploy/repository/branches/${encodeURIComponent(branch)}`]);
    expect(mn.errors).toEqual([]);
  });
});
