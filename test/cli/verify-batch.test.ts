/**
 * `ct verify A.ctp B.ctp …` (#14 target 1): several bundles verified on worker threads give, per
 * bundle and in the order given, the verdict `ct verify` gives that bundle alone; a bad bundle
 * among good ones sets the exit code without hiding the others; the pool itself bounds its queue
 * and survives a thread that dies.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCt } from '../support/cli.js';
import { MemLog, makeKey, makeStore } from '../verify/fixtures.js';
import { signCtpInMemory, tempDir, writeUnsignedCtp } from '../verify/ctp-fixtures.js';
import { WorkerPool } from '../../src/verify/batch/pool.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
const p = (n: string) => join(tmp.dir, n);
const GOOD = 9;

beforeAll(async () => {
  tmp = await tempDir('ct-verify-batch-');
  const signer = makeKey();
  const logs = [new MemLog('log-a', 'Operator A'), new MemLog('log-b', 'Operator B')];
  await writeFile(p('trust.json'), JSON.stringify(makeStore({ signers: [{ key: signer }], logs })));
  await writeUnsignedCtp(p('app.ctp'));
  await signCtpInMemory(p('app.ctp'), p('good-0.ctp'), signer, logs);
  for (let i = 1; i < GOOD; i++) await copyFile(p('good-0.ctp'), p(`good-${i}.ctp`));
  const bytes = await readFile(p('good-0.ctp'));
  const at = bytes.indexOf('SCMP_ACT_ERRNO');
  bytes[at + 9] = 'X'.charCodeAt(0);
  await writeFile(p('tampered.ctp'), bytes);
});

afterAll(async () => {
  await tmp?.cleanup();
});

describe('ct verify with several bundles', () => {
  // good-0 … good-3, tampered, a missing file, good-4 … good-8: 11 paths (the pool is used from 8).
  const paths = (): string[] => [...[0, 1, 2, 3].map((i) => p(`good-${i}.ctp`)), p('tampered.ctp'), p('missing.ctp'), ...[4, 5, 6, 7, 8].map((i) => p(`good-${i}.ctp`))];

  it('reports every bundle in the order given, on threads or not, with the first failure as exit code', async () => {
    const runs = await Promise.all(['2', '1'].map((t) => runCt(['verify', ...paths(), '--trust-store', p('trust.json'), '--json', '--threads', t, '--audit-log', p(`audit-${t}.jsonl`)])));
    for (const r of runs) {
      expect(r.code).toBe(1); // the tampered bundle: DIGEST_MISMATCH
      const out = JSON.parse(r.stdout) as { bundle: string; decision?: string; code?: string }[];
      expect(out.map((o) => o.bundle)).toEqual(paths());
      expect(out.map((o) => o.code ?? o.decision)).toEqual(['ALLOW', 'ALLOW', 'ALLOW', 'ALLOW', 'DIGEST_MISMATCH', 'IO_ERROR', 'ALLOW', 'ALLOW', 'ALLOW', 'ALLOW', 'ALLOW']);
      expect(out[5].decision).toBe('REJECT');
    }
    // Threads or not, the same verdicts and decision records.
    const strip = (text: string) => text.trim().split('\n').map((l) => { const { decision, code, bundleDigest, imageDigest } = JSON.parse(l); return { decision, code, bundleDigest, imageDigest }; });
    const [threaded, inline] = await Promise.all(['2', '1'].map(async (t) => strip(await readFile(p(`audit-${t}.jsonl`), 'utf8'))));
    expect(threaded).toHaveLength(11);
    expect(threaded).toEqual(inline);
    // And each verdict is the one `ct verify` gives that bundle alone.
    const alone = await runCt(['verify', p('tampered.ctp'), '--trust-store', p('trust.json'), '--json']);
    expect(JSON.parse(alone.stdout)).toMatchObject({ decision: 'REJECT', code: 'DIGEST_MISMATCH' });
  });

  it('prints readable reports in order (VERIFIED on stdout, the rest on stderr); all good is exit 0', async () => {
    const good = [...Array(GOOD).keys()].map((i) => p(`good-${i}.ctp`));
    const r = await runCt(['verify', ...good, '--trust-store', p('trust.json')]);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('VERIFIED: ')).map((l) => l.slice(10))).toEqual(good);
    const bad = await runCt(['verify', p('missing.ctp'), p('tampered.ctp'), '--trust-store', p('trust.json'), '--threads', '2']);
    expect(bad.code).toBe(11); // the first failure: the missing file (IO_ERROR)
    expect(bad.stderr).toMatch(new RegExp(`^REJECTED: ${p('missing.ctp')} \\[IO_ERROR\\][^]*\nREJECTED: ${p('tampered.ctp')} \\[DIGEST_MISMATCH\\]`));
  });

  it('refuses a bad --threads and a missing trust store once, before verifying anything', async () => {
    for (const t of ['0', '-1', 'x', '1000']) {
      const r = await runCt(['verify', p('good-0.ctp'), p('good-1.ctp'), '--trust-store', p('trust.json'), '--threads', t]);
      expect(r).toMatchObject({ code: 1, stdout: '' });
      expect(r.stderr).toContain('error[USAGE]: --threads');
    }
    const r = await runCt(['verify', ...paths(), '--trust-store', p('nope.json'), '--threads', '2']);
    expect(r.code).toBe(11);
    expect(r.stderr.match(/error\[IO_ERROR\]/g)).toHaveLength(1);
  });
});

describe('the worker pool', () => {
  // A worker that echoes, dies on "die", and takes a while on "slow".
  const src = `import { parentPort } from 'node:worker_threads';
parentPort.on('message', (m) => {
  if (m.input === 'die') process.exit(3);
  if (m.input === 'bad') return parentPort.postMessage({ id: m.id, err: { code: 'MALFORMED_BUNDLE', message: 'bad input' } });
  const end = Date.now() + (m.input === 'slow' ? 200 : 0);
  while (Date.now() < end);
  parentPort.postMessage({ id: m.id, ok: m.input + '!' });
});`;
  const url = new URL(`data:text/javascript,${encodeURIComponent(src)}`);

  it('answers in order of submission per task, fails a task whose thread died and replaces the thread, maps errors to codes', async () => {
    const pool = new WorkerPool<string, string>(url, null, { size: 2 });
    try {
      const r = await Promise.allSettled(['a', 'die', 'b', 'bad', 'slow', 'c'].map((x) => pool.run(x)));
      expect(r.map((x) => (x.status === 'fulfilled' ? x.value : (x.reason as { code: string }).code))).toEqual(['a!', 'VERIFY_WORKER_FAILED', 'b!', 'MALFORMED_BUNDLE', 'slow!', 'c!']);
      expect(await pool.run('d')).toBe('d!');
    } finally {
      await pool.close();
    }
    await expect(pool.run('e')).rejects.toMatchObject({ code: 'VERIFY_WORKER_FAILED' });
  });

  it('bounds its queue (VERIFY_QUEUE_FULL) and fails what is left when closed', async () => {
    const pool = new WorkerPool<string, string>(url, null, { size: 1, maxQueued: 2 });
    const running = pool.run('slow');
    const queued = [pool.run('x'), pool.run('y')];
    await expect(pool.run('z')).rejects.toMatchObject({ code: 'VERIFY_QUEUE_FULL' });
    expect(await running).toBe('slow!');
    expect(await Promise.all(queued)).toEqual(['x!', 'y!']);
    const left = Promise.allSettled([pool.run('slow'), pool.run('w')]);
    await pool.close();
    expect((await left).map((l) => l.status === 'rejected' && (l.reason as { code: string }).code)).toEqual(['VERIFY_WORKER_FAILED', 'VERIFY_WORKER_FAILED']);
  });
});
