/**
 * Promotion against the GitHub API stand-in (every request validated against GitHub's OpenAPI
 * description) through the real Octokit client, with a repository's state behind it.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { jwtVerify } from 'jose';
import { startGitHubApi, type GitHubApi } from '../support/github-api.js';
import { FakeRepo } from '../support/github-repo.js';
import { codeOfAsync } from '../support/error-code.js';
import { githubAppToken, githubForge } from '../../src/promote/github.js';
import { promote, type PromoteInput } from '../../src/promote/promote.js';
import { promotionEvidence } from '../../src/promote/evidence.js';
import { runCt } from '../support/cli.js';
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { buildFixture, desiredState, type Built, type PromoteFixture } from './fixtures.js';

let api: GitHubApi;
let fx: PromoteFixture;
let repo: FakeRepo;
const FILE = 'deploy/desired.yaml';

beforeAll(async () => {
  api = await startGitHubApi();
  fx = await buildFixture();
});
afterAll(async () => {
  await api.close();
  await fx.cleanup();
});
beforeEach(() => {
  api.requests.length = 0;
  repo = new FakeRepo('acme', 'deploy', { [FILE]: desiredState(fx.v1.reference, fx.v1.reference) });
  repo.attach(api);
});

const forge = (extra: Partial<Parameters<typeof githubForge>[0]> = {}) => githubForge({ apiUrl: api.url, allowedAddresses: ['127.0.0.1'], token: 'ghs_test', repository: 'acme/deploy', ...extra });
const input = (b: Built, environment = 'staging'): PromoteInput => ({ environment, app: 'hello', bundle: b.reference, bundleDigest: undefined, file: FILE });
const evidenceFor = (b: Built, environment = 'staging') => (previous: { bundle: string } | undefined) =>
  promotionEvidence({ candidate: b.path, trust: fx.trust, policies: fx.policies, environment, ...(previous?.bundle === fx.v1.reference ? { current: { path: fx.v1.path, reference: fx.v1.reference } } : { currentMissing: 'not fetched in this test' }) });
const writes = () => api.requests.filter((r) => r.method !== 'GET').map((r) => r.operationId);

describe('promotion pull request on GitHub', () => {
  it('opens one pull request that changes exactly the digest line, with the evidence in its body and a status on its head', async () => {
    const before = repo.file('main', FILE)!;
    const r = await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    expect(api.errors).toEqual([]);
    expect(r).toMatchObject({ outcome: 'opened', branch: 'ct-promote/staging/hello', base: 'main', allow: true, previous: { bundle: fx.v1.reference } });
    expect(repo.pulls).toHaveLength(1);
    const after = repo.file('ct-promote/staging/hello', FILE)!;
    const diff = before.split('\n').map((l, i) => [l, after.split('\n')[i]]).filter(([a, b]) => a !== b);
    expect(diff).toEqual([[`        bundle: "${fx.v1.reference}"   # pinned by CI`, `        bundle: "${fx.v2.reference}"   # pinned by CI`]]);
    const body = repo.pulls[0].body;
    // Signer, logs per operator, source commit, SBOM and seccomp differences, policy decision.
    expect(body).toContain(`key \`${fx.signer.keyId}\` (trust-store roles: builders)`);
    expect(body).toMatch(/- Operator A: `log-a` #\d+, `log-a` #\d+/);
    expect(body).toMatch(/- Operator B: `log-b` #\d+/);
    expect(body).toContain('`c0ffee0000000000000000000000000000000000` in `git+https://github.com/acme/hello@refs/heads/main`');
    expect(body).toContain('added (1):\n- `openssl 3.0.15`');
    expect(body).toContain('removed (1):\n- `zlib 1.3`');
    expect(body).toContain('- `busybox 1.36.1 → 1.37.0`');
    expect(body).toContain('**Seccomp syscalls allowed:**\nadded (1):\n- `+ openat`\nremoved (1):\n- `- write`');
    expect(body).toContain('decision: ALLOW (mode strict)');
    expect(body).toContain('policies applied: staging');
    const status = repo.statuses.at(-1)!;
    expect(status).toMatchObject({ sha: repo.branches.get('ct-promote/staging/hello'), state: 'success', context: 'cerro-torre/promote/staging' });
  });

  it('is idempotent (a rerun writes nothing) and a newer bundle updates the same pull request', async () => {
    await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    api.requests.length = 0;
    const again = await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    expect(again.outcome).toBe('unchanged');
    expect(writes()).toEqual([]);
    const newer = await promote(input(fx.v3), forge(), evidenceFor(fx.v3));
    expect(newer.outcome).toBe('updated');
    expect(newer.change!.number).toBe(1);
    expect(repo.pulls).toHaveLength(1);
    expect(repo.pulls[0].body).toContain(fx.v3.reference);
    expect(repo.file('ct-promote/staging/hello', FILE)).toContain(fx.v3.reference);
    expect(writes()).toEqual(['repos/create-or-update-file-contents', 'pulls/update', 'repos/create-commit-status']);
    expect(api.errors).toEqual([]);
  });

  it('a branch left behind by a merged pull request starts over from the base: the new pull request carries only its own edit', async () => {
    const branch = 'ct-promote/staging/hello';
    const first = await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    // Squash-merged; the repository does not delete head branches, so the branch stays.
    repo.merge(first.change!.number);
    const stale = repo.branches.get(branch)!;
    // Meanwhile someone else edits the desired state on main.
    repo.push('main', FILE, repo.file('main', FILE)!.replace('# the greeter', '# the greeter, reviewed'));
    const second = await promote(input(fx.v3), forge(), evidenceFor(fx.v3));
    expect(second).toMatchObject({ outcome: 'opened', change: { number: 2 } });
    const head = repo.branches.get(branch)!;
    expect(head).not.toBe(stale);
    // One commit on top of main, changing only the digest line.
    expect(repo.commits.get(head)!.parent).toBe(repo.branches.get('main'));
    expect(repo.file(branch, FILE)).toBe(repo.file('main', FILE)!.replace(fx.v2.reference, fx.v3.reference));
    repo.merge(2);
    expect(repo.file('main', FILE)).toContain('# the greeter, reviewed');
    expect(repo.file('main', FILE)).toContain(fx.v3.reference);
    expect(api.errors).toEqual([]);
  });

  it('a commit pushed to the branch after its pull request was merged is kept: the branch is reused, never reset', async () => {
    const branch = 'ct-promote/staging/hello';
    const first = await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    repo.merge(first.change!.number);
    // Someone goes on working on the branch (no pull request carries this commit).
    const human = repo.push(branch, 'NOTES.md', 'work nobody reviewed yet\n', 'wip by a human');
    const second = await promote(input(fx.v3), forge(), evidenceFor(fx.v3));
    expect(second).toMatchObject({ outcome: 'opened', change: { number: 2 } });
    expect(repo.commits.get(repo.branches.get(branch)!)!.parent).toBe(human);
    expect(repo.file(branch, 'NOTES.md')).toBe('work nobody reviewed yet\n');
    expect(repo.file(branch, FILE)).toContain(fx.v3.reference);
    expect(writes()).not.toContain('git/update-ref');
    expect(api.errors).toEqual([]);
  });

  it('a branch whose pull request is still open on another base is not reset: that pull request keeps its commits', async () => {
    const branch = 'ct-promote/staging/hello';
    await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    // A maintainer retargets the pull request to a release branch: it is open, but not into main.
    repo.branches.set('release', repo.branches.get('main')!);
    repo.pulls[0].base = 'release';
    const held = repo.branches.get(branch)!;
    const second = await promote(input(fx.v3), forge(), evidenceFor(fx.v3));
    expect(second).toMatchObject({ outcome: 'opened', change: { number: 2 } });
    expect(repo.commits.get(repo.branches.get(branch)!)!.parent).toBe(held);
    expect(writes()).not.toContain('git/update-ref');
    expect(api.errors).toEqual([]);
  });

  it('a branch left by a closed (not merged) pull request with nothing pushed since starts over from the base', async () => {
    const branch = 'ct-promote/staging/hello';
    await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    repo.close(1);
    const second = await promote(input(fx.v3), forge(), evidenceFor(fx.v3));
    expect(second).toMatchObject({ outcome: 'opened', change: { number: 2 } });
    expect(repo.commits.get(repo.branches.get(branch)!)!.parent).toBe(repo.branches.get('main'));
    expect(writes()).toContain('git/update-ref');
    expect(api.errors).toEqual([]);
  });

  it('a pull request from a fork in the same organisation, with the promotion branch\'s name, is never taken for ours', async () => {
    const branch = 'ct-promote/staging/hello';
    // GitHub lists it first under head `acme:<branch>` (the head filter names the owner, not the repository).
    const theirs = 'f'.repeat(40);
    repo.pulls.push({ number: 1, head: branch, base: 'main', title: 'innocent', body: 'attacker text', state: 'open', merged: false, fork: { owner: 'acme', name: 'deploy-fork', id: 4242, sha: theirs } });
    const first = await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    expect(first).toMatchObject({ outcome: 'opened', change: { number: 2 } });
    // The next run finds our own pull request; before, it took the fork's and rewrote its body with
    // the evidence and posted a success status on the fork's head.
    const again = await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    expect(again).toMatchObject({ outcome: 'unchanged', change: { number: 2, headSha: repo.branches.get(branch) } });
    const newer = await promote(input(fx.v3), forge(), evidenceFor(fx.v3));
    expect(newer).toMatchObject({ outcome: 'updated', change: { number: 2 } });
    expect(repo.pulls[0]).toMatchObject({ title: 'innocent', body: 'attacker text' });
    expect(repo.pulls[1].body).toContain(fx.v3.reference);
    expect(repo.statuses.filter((x) => x.sha === theirs)).toEqual([]);
    expect(api.requests.filter((r) => r.operationId === 'pulls/update').map((r) => r.params.pull_number)).toEqual(['2']);
    // Closed with its head equal to ours (a fork can hold our commits), it does not make our branch
    // one that outlived its change: the commit pushed since our pull request closed is kept.
    repo.close(2);
    const human = repo.push(branch, 'NOTES.md', 'work nobody reviewed yet\n', 'wip by a human');
    Object.assign(repo.pulls[0], { state: 'closed', closedHead: human });
    const after = await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    expect(after).toMatchObject({ outcome: 'opened', change: { number: 3 } });
    expect(repo.file(branch, 'NOTES.md')).toBe('work nobody reviewed yet\n');
    expect(writes()).not.toContain('git/update-ref');
    expect(api.errors).toEqual([]);
  });

  // GitHub lists pull requests newest first, at most 100 to a page, and its head filter names the
  // owner: forks in the same organisation, their pull requests from a branch of the same name
  // open or closed, can outnumber a page.
  const forkPulls = (n: number, state: 'open' | 'closed') => {
    for (let i = 0; i < n; i++) {
      repo.pulls.push({ number: repo.pulls.length + 1, head: 'ct-promote/staging/hello', base: 'main', title: `fork ${i}`, body: '', state, merged: false, fork: { owner: 'acme', name: `deploy-fork-${i}`, id: 5000 + i, sha: 'e'.repeat(40) } });
    }
  };

  it('our open pull request is found past 150 newer ones from forks in the same organisation: updated, no second one opened', async () => {
    expect(await promote(input(fx.v2), forge(), evidenceFor(fx.v2))).toMatchObject({ outcome: 'opened', change: { number: 1 } });
    forkPulls(150, 'open');
    api.requests.length = 0;
    // Before, only the first page (the forks' 100 newest) was read: ours was missed and another opened.
    expect(await promote(input(fx.v2), forge(), evidenceFor(fx.v2))).toMatchObject({ outcome: 'unchanged', change: { number: 1 } });
    expect(await promote(input(fx.v3), forge(), evidenceFor(fx.v3))).toMatchObject({ outcome: 'updated', change: { number: 1 } });
    expect(writes()).not.toContain('pulls/create');
    expect(repo.pulls[0].body).toContain(fx.v3.reference);
    expect(api.errors).toEqual([]);
  });

  it('our merged pull request is found past 150 newer closed ones from forks in the same organisation: its branch starts over from the base', async () => {
    const branch = 'ct-promote/staging/hello';
    const first = await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    repo.merge(first.change!.number);
    const stale = repo.branches.get(branch)!;
    forkPulls(150, 'closed');
    api.requests.length = 0;
    // Before, our merged one was off the page: the branch was reused, carrying its old history.
    const second = await promote(input(fx.v3), forge(), evidenceFor(fx.v3));
    expect(second).toMatchObject({ outcome: 'opened', change: { number: 152 } });
    expect(writes()).toContain('git/update-ref');
    expect(repo.commits.get(repo.branches.get(branch)!)!.parent).toBe(repo.branches.get('main'));
    expect(repo.branches.get(branch)).not.toBe(stale);
    expect(api.errors).toEqual([]);
  });

  it('two promotions racing for one app: the one that lost opening the pull request leaves the winner\'s body when a newer commit is on top, and no error', async () => {
    // v2 has written its commit and is about to open the pull request when v3 runs whole: its
    // commit goes on top and it opens the pull request; v2's open then meets GitHub's 422.
    const f = forge();
    let raced = false;
    const racing = { ...f, openChange: async (c: Parameters<typeof f.openChange>[0]) => {
      if (!raced) {
        raced = true;
        expect((await promote(input(fx.v3), forge(), evidenceFor(fx.v3))).outcome).toBe('opened');
      }
      return f.openChange(c);
    } };
    const late = await promote(input(fx.v2), racing, evidenceFor(fx.v2));
    expect(late.outcome).toBe('updated');
    expect(repo.pulls).toHaveLength(1);
    // The body describes what the branch pins: v3, whose commit is the head.
    expect(repo.file('ct-promote/staging/hello', FILE)).toContain(fx.v3.reference);
    expect(repo.pulls[0].body).toContain(`| to | \`${fx.v3.reference}\` |`);
    expect(late.change!.number).toBe(1);
  });

  it('a promotion that opened nothing because another opened the pull request first, while its own commit is on top, puts its body there', async () => {
    // v3 opens the pull request (its commit on the branch); v2 writes on top, then its open meets the 422.
    const f = forge();
    let raced = false;
    const racing = { ...f, writeFile: async (...a: Parameters<typeof f.writeFile>) => {
      if (!raced) {
        raced = true;
        expect((await promote(input(fx.v3), forge(), evidenceFor(fx.v3))).outcome).toBe('opened');
        // v2's read of the file is stale now: its write is refused, made again on top.
      }
      return f.writeFile(...a);
    } };
    const r = await promote(input(fx.v2), racing, evidenceFor(fx.v2));
    expect(r.outcome).toBe('updated');
    expect(repo.pulls).toHaveLength(1);
    expect(repo.file('ct-promote/staging/hello', FILE)).toContain(fx.v2.reference);
    expect(repo.pulls[0].body).toContain(`| to | \`${fx.v2.reference}\` |`);
    expect(repo.statuses.at(-1)).toMatchObject({ sha: repo.branches.get('ct-promote/staging/hello'), context: 'cerro-torre/promote/staging' });
  });

  it('one pull request per (environment, app): production gets its own branch', async () => {
    await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    const p = await promote(input(fx.v2, 'production'), forge(), evidenceFor(fx.v2, 'production'));
    expect(p.branch).toBe('ct-promote/production/hello');
    expect(repo.pulls.map((x) => x.head)).toEqual(['ct-promote/staging/hello', 'ct-promote/production/hello']);
  });

  it('a file changed on the branch meanwhile: the edit is made again on top (never overwritten); always changing: PROMOTE_CONFLICT', async () => {
    await promote(input(fx.v2), forge(), evidenceFor(fx.v2));
    let once = true;
    repo.beforeWrite = (branch, path) => {
      if (!once) return;
      once = false;
      repo.push(branch, path, repo.file(branch, path)!.replace('# the greeter', '# the greeter (reviewed)'));
    };
    const r = await promote(input(fx.v3), forge(), evidenceFor(fx.v3));
    expect(r.rebases).toBe(1);
    const text = repo.file('ct-promote/staging/hello', FILE)!;
    expect(text).toContain('# the greeter (reviewed)');
    expect(text).toContain(fx.v3.reference);
    let n = 0;
    repo.beforeWrite = (branch, path) => void repo.push(branch, path, `${repo.file(branch, path)!}# edit ${++n}\n`);
    expect(await codeOfAsync(promote(input(fx.v1), forge(), evidenceFor(fx.v1)))).toBe('PROMOTE_CONFLICT');
    expect(repo.file('ct-promote/staging/hello', FILE)).toContain('# edit 4');
  });

  it('refuses an app missing from the environment before writing anything', async () => {
    expect(await codeOfAsync(promote({ ...input(fx.v2), app: 'nope' }, forge(), evidenceFor(fx.v2)))).toBe('PROMOTE_APP_MISSING');
    expect(writes()).toEqual([]);
  });

  it('an expired token is PROMOTE_TOKEN_REJECTED, not retried', async () => {
    api.respond('repos/get', () => ({ status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } }));
    expect(await codeOfAsync(promote(input(fx.v2), forge(), evidenceFor(fx.v2)))).toBe('PROMOTE_TOKEN_REJECTED');
    expect(api.requests.filter((r) => r.operationId === 'repos/get')).toHaveLength(1);
  });

  it('a rate-limited call waits for the reset time GitHub sends, then goes on', async () => {
    const now = 1_800_000_000_000;
    let limited = 1;
    const inner = api;
    inner.respond('repos/get', () => (limited-- > 0
      ? { status: 403, body: { message: 'API rate limit exceeded', documentation_url: 'https://docs.github.com/rest' }, headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(now / 1000 + 42) } }
      : { status: 200, body: { default_branch: 'main' } }));
    const waits: number[] = [];
    const r = await promote(input(fx.v2), forge({ now: () => now, sleep: async (ms) => void waits.push(ms) }), evidenceFor(fx.v2));
    expect(waits).toEqual([43_000]);
    expect(r.outcome).toBe('opened');
    // A reset further away than allowed fails clearly instead of hanging the job.
    limited = 1;
    expect(await codeOfAsync(promote(input(fx.v3), forge({ now: () => now, maxRateLimitWaitMs: 10_000, sleep: async () => {} }), evidenceFor(fx.v3)))).toBe('PROMOTE_RATE_LIMITED');
  });

  it('a GitHub App installation token is minted with an RS256 JWT signed by the App key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    let iss: unknown;
    api.respond('apps/create-installation-access-token', (r) => {
      const jwt = String(r.headers.authorization).replace(/^bearer /i, '');
      void jwtVerify(jwt, publicKey).then((v) => (iss = v.payload.iss));
      return { status: 201, body: { token: 'ghs_installation', expires_at: new Date(Date.now() + 3600_000).toISOString() } };
    });
    const t = await githubAppToken({ apiUrl: api.url, allowedAddresses: ['127.0.0.1'], appId: '12345', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), installationId: 99 });
    expect(t.token).toBe('ghs_installation');
    await new Promise((r) => setTimeout(r, 50));
    expect(iss).toBe('12345');
    expect(api.requests.at(-1)).toMatchObject({ operationId: 'apps/create-installation-access-token', params: { installation_id: '99' } });
    api.respond('apps/create-installation-access-token', () => ({ status: 201, body: { token: 'old', expires_at: '2020-01-01T00:00:00Z' } }));
    expect(await codeOfAsync(githubAppToken({ apiUrl: api.url, allowedAddresses: ['127.0.0.1'], appId: '12345', privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), installationId: 99 }))).toBe('PROMOTE_TOKEN_REJECTED');
    expect(api.errors).toEqual([]);
  });

  it('every forge URL passes the URL guard: a loopback API (literal or name) and a redirect to an internal address are refused before anything is sent there', async () => {
    // No allowed addresses: 127.0.0.1 (a literal) and localhost (a name, judged in the socket's lookup) are refused.
    const noAllow = githubForge({ apiUrl: api.url, token: 'ghs_test', repository: 'acme/deploy' });
    expect(await codeOfAsync(promote(input(fx.v2), noAllow, evidenceFor(fx.v2)))).toBe('PROMOTE_URL_NOT_ALLOWED');
    const byName = githubForge({ apiUrl: api.url.replace('127.0.0.1', 'localhost'), token: 'ghs_test', repository: 'acme/deploy' });
    expect(await codeOfAsync(promote(input(fx.v2), byName, evidenceFor(fx.v2)))).toBe('PROMOTE_URL_NOT_ALLOWED');
    expect(await codeOfAsync(promote(input(fx.v2), githubForge({ apiUrl: 'file:///etc', token: 't', repository: 'acme/deploy' }), evidenceFor(fx.v2)))).toBe('PROMOTE_URL_NOT_ALLOWED');
    expect(api.requests).toEqual([]);
    // The API (allowed) redirects to the cloud metadata address: the hop is refused.
    api.respond('repos/get', () => ({ status: 307, headers: { location: 'http://169.254.169.254/latest/meta-data/' }, body: {} }));
    expect(await codeOfAsync(promote(input(fx.v2), forge(), evidenceFor(fx.v2)))).toBe('PROMOTE_URL_NOT_ALLOWED');
    expect(repo.pulls).toEqual([]);
  });

  it('ct promote does the same from the command line (token from the environment), comparing with --current', async () => {
    const pol = join(fx.dir, 'staging.policy.yaml');
    await writeFile(pol, fx.policyText);
    const args = ['promote', '--github', 'acme/deploy', '--api-url', api.url, '--allow-address', '127.0.0.1', '--file', FILE, '--environment', 'staging', '--app', 'hello', '--bundle', fx.v2.reference, '--ctp', fx.v2.path, '--current', fx.v1.path, '--trust-store', join(fx.dir, 'trust-store.json'), '--policies', pol, '--json'];
    const r = await runCt(args, { env: { GITHUB_TOKEN: 'ghs_cli' } });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ outcome: 'opened', branch: 'ct-promote/staging/hello', allow: true });
    expect(repo.pulls[0].body).toContain('- `busybox 1.36.1 → 1.37.0`');
    expect(api.requests.every((q) => q.headers.authorization === 'token ghs_cli')).toBe(true);
    const again = await runCt(args, { env: { GITHUB_TOKEN: 'ghs_cli' } });
    expect(JSON.parse(again.stdout).outcome).toBe('unchanged');
    const noToken = await runCt(args, { env: { GITHUB_TOKEN: '' } });
    expect(noToken.stderr).toContain('error[USAGE]: no token: set GITHUB_TOKEN');
    expect(api.errors).toEqual([]);
  });
});
