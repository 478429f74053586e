import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb, type Db } from '../../server/store/db.js';
import { migrate } from '../../server/store/migrations.js';
import { GitMirror, MAX_WALKED_COMMIT_BYTES } from '../../server/gitops/git.js';
import { Reconciler } from '../../server/gitops/reconcile.js';
import { MAX_DESIRED_STATE_BYTES, MAX_DESIRED_STATE_TOTAL_BYTES, type DesiredApp } from '../../server/gitops/desired-state.js';
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

  it('refuses a misspelt field (the pin, the stop or the rule it meant would silently not apply), naming it', async () => {
    const applied = await reconciler.appliedCommit();
    const ref = `127.0.0.1:5000/acme/hello@${digest('c')}`;
    for (const [text, where] of [
      [`environments:\n  production:\n    apps:\n      hello:\n        bundle: ${ref}\n        bundle_digest: ${digest('d')}\n`, 'environments.production.apps.hello.bundle_digest'],
      [`environments:\n  production:\n    apps:\n      hello:\n        bundle: ${ref}\n        suspend: true\n`, 'environments.production.apps.hello.suspend'],
      [`environments:\n  production:\n    app: {}\n    apps: {}\n`, 'environments.production.app'],
      [`environments:\n  production:\n    apps: {}\npromotions:\n  - { from: staging, to: production, after: 1h }\n`, 'promotions'],
    ] as const) {
      commit(text, 'typo');
      expect(await reconciler.reconcile('test')).toMatchObject({ outcome: 'refused', reason: 'INVALID_STATE', code: 'MANIFEST_INVALID', message: expect.stringContaining(`deploy/state.yaml: ${where}: unknown field (`) });
      expect(await reconciler.appliedCommit()).toBe(applied);
    }
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
      // A refusal by ssh-keygen ("No principal matched.") is remembered: asked again with an
      // ssh-keygen that would leave a mark, the answer comes without running it.
      const withProgram = async (program: string) => {
        Object.assign(process.env, { GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'gpg.ssh.program', GIT_CONFIG_VALUE_0: program });
        try {
          return await r.reconcile('t');
        } finally {
          for (const k of ['GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_VALUE_0']) delete process.env[k];
        }
      };
      const script = (name: string, body: string) => {
        writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`, { mode: 0o755 });
        return join(dir, name);
      };
      const marked = join(dir, 'ran');
      commit(state(digest('9')), 'other');
      expect(await r.reconcile('t')).toMatchObject({ outcome: 'refused', reason: 'UNSIGNED_COMMIT', message: expect.stringContaining('No principal matched') });
      expect(await withProgram(script('mark', `touch ${marked}; exec ssh-keygen "$@"`))).toMatchObject({ outcome: 'refused', reason: 'UNSIGNED_COMMIT' });
      expect(existsSync(marked)).toBe(false);
      // An ssh-keygen that could not judge (not installed; out of files while looking for the
      // principal, after which git says "Good" but not allowed; failing silently) is no verdict:
      // once it works again, the same signed head is applied, not refused from memory.
      const broken = [
        join(dir, 'no-ssh-keygen'),
        script('emfile', 'for a; do [ "$a" = find-principals ] && { echo "load_allowed: Too many open files" >&2; exit 255; }; done; exec ssh-keygen "$@"'),
        script('silent', 'exit 255'),
      ];
      let allowedAgain = '';
      for (const [i, program] of broken.entries()) {
        allowedAgain = commit(state(digest('def'[i])), 'allowed');
        expect(await withProgram(program)).toMatchObject({ outcome: 'refused', reason: 'UNSIGNED_COMMIT' });
        expect(await r.reconcile('t')).toMatchObject({ outcome: 'applied', commit: allowedAgain });
      }
      expect(deploys).toEqual([digest('a'), digest('d'), digest('e'), digest('f')]);
      // The signature header (multi-line) does not confuse the author and message.
      expect(infos).toEqual(Array(4).fill({ author: 't <t@e>', message: 'x' }));
      expect(await r.appliedCommit()).toBe(allowedAgain);
    } finally {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('GitOps reconcile: a head is authenticated before its content is read, and sizes are bounded before parsing', () => {
  let dir: string;
  let work: string;
  let db: Db;
  let mirror: GitMirror;
  let r: Reconciler;
  /** Every object name the reconciler asked git for. */
  const reads: string[] = [];
  /** Every read with the limit it was given and the size of what it got (-1: nothing). */
  const answered: { name: string; maxBytes: number | undefined; got: number }[] = [];
  /** Called with each object name just after it was asked for. */
  let onRead: (name: string) => void = () => undefined;
  const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@e', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@e' };
  const git = (args: string[]) => execFileSync('git', args, { cwd: work, encoding: 'utf8', env }).trim();
  /** Valid desired state declaring no app, padded with comment lines to about `bytes`. */
  const padded = (bytes: number) => `environments:\n  production:\n    apps: {}\n${`# ${'x'.repeat(98)}\n`.repeat(Math.ceil(bytes / 101))}`;
  /** Replaces deploy/ with `files`, commits (signed by the allowed key or not at all) and pushes. */
  const commit = (files: Record<string, string>, signed: boolean) => {
    rmSync(join(work, 'deploy'), { recursive: true, force: true });
    mkdirSync(join(work, 'deploy'));
    for (const [f, text] of Object.entries(files)) writeFileSync(join(work, 'deploy', f), text);
    git(['add', '-A']);
    git(signed ? ['-c', 'gpg.format=ssh', '-c', `user.signingkey=${join(dir, 'allowed')}`, 'commit', '-q', '-S', '-m', 'x'] : ['commit', '-q', '-m', 'x']);
    git(['push', '-q', '--force', 'origin', 'HEAD:main']);
    return git(['rev-parse', 'HEAD']);
  };
  const blob = (head: string, file: string) => git(['rev-parse', `${head}:deploy/${file}`]);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ct-gitops-limits-'));
    const bare = join(dir, 'desired.git');
    work = join(dir, 'work');
    execFileSync('git', ['init', '-q', '--bare', '-b', 'main', bare]);
    execFileSync('git', ['init', '-q', '-b', 'main', work]);
    git(['remote', 'add', 'origin', bare]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'allowed', '-f', join(dir, 'allowed')]);
    writeFileSync(join(dir, 'allowed_signers'), `t@e ${readFileSync(join(dir, 'allowed.pub'), 'utf8').trim()}\n`);
    db = await openDb({ sqlitePath: ':memory:' });
    await migrate(db);
    mirror = new GitMirror(bare, join(dir, 'cache'));
    const reader = mirror.reader;
    const read = reader.read.bind(reader);
    reader.read = (name: string, maxBytes?: number, owner?: object) => {
      reads.push(name);
      const p = read(name, maxBytes, owner);
      onRead(name);
      return p.then(
        (o) => (answered.push({ name, maxBytes, got: o ? o.data.length : -1 }), o),
        (e: unknown) => (answered.push({ name, maxBytes, got: -1 }), Promise.reject(e)),
      );
    };
    r = new Reconciler(db, mirror, { branch: 'main', path: 'deploy', allowedSignersFile: join(dir, 'allowed_signers'), enqueueDeploy: async () => undefined });
  });
  afterAll(async () => {
    mirror.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an unsigned head as unsigned without reading its files, however large', async () => {
    const base = commit({ 'state.yaml': state(digest('a')) }, true);
    expect(await r.reconcile('t')).toMatchObject({ outcome: 'applied', commit: base });
    const head = commit({ 'state.yaml': state(digest('a')), 'big.yaml': padded(2 * MAX_DESIRED_STATE_BYTES) }, false);
    reads.length = 0;
    const started = Date.now();
    expect(await r.reconcile('t')).toMatchObject({ outcome: 'refused', reason: 'UNSIGNED_COMMIT', commit: head });
    expect(Date.now() - started).toBeLessThan(10_000);
    // Nothing of the head's tree was asked for, not even in the background after the refusal.
    await new Promise((res) => setTimeout(res, 200));
    expect(reads.filter((n) => n.startsWith(`${head}:`) || n === blob(head, 'big.yaml'))).toEqual([]);
    expect(await r.appliedCommit()).toBe(base);
  });

  it('refuses a signed head with a file over the limit before parsing it, and does not read it again at the next poll', async () => {
    const head = commit({ 'state.yaml': state(digest('a')), 'big.yaml': padded(MAX_DESIRED_STATE_BYTES + 1) }, true);
    const first = await r.reconcile('t');
    expect(first).toMatchObject({ outcome: 'refused', reason: 'INVALID_STATE', code: 'DESIRED_STATE_TOO_LARGE', commit: head });
    expect((first as { message: string }).message).toContain('deploy/big.yaml');
    reads.length = 0;
    expect(await r.reconcile('poll')).toEqual(first);
    expect(reads.filter((n) => n.startsWith(`${head}:`) || n === blob(head, 'big.yaml'))).toEqual([]);
    const rows = await db.query<{ outcome: string }>('SELECT outcome FROM reconciles WHERE commit_sha = ?', [head]);
    expect(rows.map((x) => x.outcome)).toEqual(['refused:INVALID_STATE', 'refused:INVALID_STATE']);
  });

  it('counts a blob listed under N names N times against the per-commit total, reading it once', async () => {
    const text = padded(MAX_DESIRED_STATE_BYTES - 4096);
    const names = Math.ceil(MAX_DESIRED_STATE_TOTAL_BYTES / Buffer.byteLength(text)) + 1;
    const files: Record<string, string> = { 'state.yaml': state(digest('b')) };
    for (let i = 0; i < names; i++) files[`copy-${String(i).padStart(3, '0')}.yaml`] = text;
    const head = commit(files, true);
    reads.length = 0;
    const out = await r.reconcile('t');
    expect(out).toMatchObject({ outcome: 'refused', reason: 'INVALID_STATE', code: 'DESIRED_STATE_TOO_LARGE', commit: head });
    expect((out as { message: string }).message).toContain(`more than ${MAX_DESIRED_STATE_TOTAL_BYTES} bytes together`);
    expect(reads.filter((n) => n === blob(head, 'copy-000.yaml'))).toHaveLength(1);
    // One name fewer than the limit allows is a valid state again.
    const fits = Object.fromEntries(Object.entries(files).slice(0, names - 2));
    expect(Buffer.byteLength(Object.values(fits).join(''))).toBeLessThanOrEqual(MAX_DESIRED_STATE_TOTAL_BYTES);
    commit(fits, true);
    expect(await r.reconcile('t')).toMatchObject({ outcome: 'applied' });
  });

  /** A commit of the applied head's tree with a `bytes`-long message (on top of `parent`, or with no parent), pushed as main. */
  const bigCommit = (bytes: number, parent?: string) => {
    const msg = join(dir, 'message');
    writeFileSync(msg, `subject\n\n${'m'.repeat(bytes)}\n`);
    const c = git(['commit-tree', `${git(['rev-parse', 'HEAD^{tree}'])}`, ...(parent ? ['-p', parent] : []), '-F', msg]);
    git(['push', '-q', '--force', 'origin', `${c}:refs/heads/main`]);
    return c;
  };

  it('refuses an unsigned head whose commit object is large without reading more of it than the walk limit, and remembers the refusal', async () => {
    const base = (await r.appliedCommit())!;
    const head = bigCommit(4 * 1024 * 1024, base);
    const verify = jest.spyOn(mirror as unknown as { runVerify: (...a: unknown[]) => Promise<unknown> }, 'runVerify');
    answered.length = 0;
    expect(await r.reconcile('t')).toMatchObject({ outcome: 'refused', reason: 'UNSIGNED_COMMIT', commit: head });
    const ofHead = answered.filter((a) => a.name.startsWith(head));
    // The ancestry walk asked for the head with the small limit and got nothing of it (git's header said too large).
    expect(ofHead.length).toBeGreaterThan(0);
    for (const a of ofHead) expect(a.maxBytes).toBeLessThanOrEqual(MAX_WALKED_COMMIT_BYTES);
    expect(ofHead.every((a) => a.got === -1)).toBe(true);
    expect(Math.max(...answered.map((a) => a.got))).toBeLessThanOrEqual(MAX_WALKED_COMMIT_BYTES);
    expect(verify).toHaveBeenCalledTimes(1);
    // The next poll neither walks nor verifies it again.
    answered.length = 0;
    expect(await r.reconcile('poll')).toMatchObject({ outcome: 'refused', reason: 'UNSIGNED_COMMIT', commit: head });
    expect(answered.filter((a) => a.name.startsWith(head))).toEqual([]);
    expect(verify).toHaveBeenCalledTimes(1);
    // Another allowed-signers file content is asked again.
    const signers = join(dir, 'allowed_signers');
    writeFileSync(signers, `${readFileSync(signers, 'utf8')}# rotated\n`);
    expect(await r.reconcile('poll')).toMatchObject({ outcome: 'refused', reason: 'UNSIGNED_COMMIT', commit: head });
    expect(verify).toHaveBeenCalledTimes(2);
    verify.mockRestore();
    expect(await r.appliedCommit()).toBe(base);
  });

  it('refuses a force-pushed head of large commits as not descending without reading them, and does not walk it again', async () => {
    const base = (await r.appliedCommit())!;
    const root = bigCommit(3 * 1024 * 1024);
    const head = bigCommit(3 * 1024 * 1024, root);
    answered.length = 0;
    expect(await r.reconcile('t')).toMatchObject({ outcome: 'refused', reason: 'NOT_DESCENDANT', commit: head });
    expect(answered.filter((a) => a.got > MAX_WALKED_COMMIT_BYTES)).toEqual([]);
    expect(answered.filter((a) => a.name.startsWith(root))).toEqual([]);
    answered.length = 0;
    expect(await r.reconcile('poll')).toMatchObject({ outcome: 'refused', reason: 'NOT_DESCENDANT', commit: head });
    expect(answered.filter((a) => a.name.startsWith(head))).toEqual([]);
    expect(await r.appliedCommit()).toBe(base);
    // Back to the applied commit for the next test.
    git(['push', '-q', '--force', 'origin', `${base}:refs/heads/main`]);
    expect(await r.reconcile('t')).toMatchObject({ outcome: 'up-to-date', commit: base });
  });

  it('a file over the limit abandons only the reconcile\'s own reads: the applied state read at the same time is answered', async () => {
    const base = (await r.appliedCommit())!;
    git(['reset', '-q', '--hard', base]);
    const other = new Reconciler(db, mirror, { branch: 'main', path: 'deploy', enqueueDeploy: async () => undefined });
    const head = commit({ ...Object.fromEntries(readdirSync(join(work, 'deploy')).map((f) => [f, readFileSync(join(work, 'deploy', f), 'utf8')])), 'big.yaml': padded(MAX_DESIRED_STATE_BYTES + 1) }, true);
    const big = blob(head, 'big.yaml');
    let applied: Promise<unknown> | undefined;
    // The moment the reconcile asks for the large file, the promoter reads the applied state (what
    // appliedState() does): its reads wait behind the large file's in the same git process.
    onRead = (name) => {
      if (name === big && !applied) applied = other.stateAt(base).then((s) => ({ ok: s }), (e: Error) => ({ error: e.message }));
    };
    const out = await r.reconcile('t');
    onRead = () => undefined;
    expect(out).toMatchObject({ outcome: 'refused', reason: 'INVALID_STATE', code: 'DESIRED_STATE_TOO_LARGE', commit: head });
    expect(applied).toBeDefined();
    const got = (await applied) as { ok?: { apps: DesiredApp[] }; error?: string };
    expect(got.error).toBeUndefined();
    expect(got.ok!.apps).toEqual(await r.desiredAt(base));
  });
});
