/**
 * `ct verify` of many bundles (#14 target 1, batch verification on worker threads): 100 distinct
 * signed .ctp files of about 2 MiB (two transparency logs each) verified one after the other in one thread, and
 * by the worker pool (one thread per available core) — wall time of the whole batch, thread
 * start-up included. Both sides run the same code (src/cli/verify-batch.ts) with the same flags.
 * On the 2-core development machine, shared with other jobs, the gain is bounded by 2×.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from './harness.js';
import { packCtp } from '../src/bundle/pack/pack.js';
import { signCtp } from '../src/attest/sign-ctp.js';
import { startLogServer } from '../src/tlog/server.js';
import { benchTrustStoreJson } from './trust-support.js';
import { verifyBatch } from '../src/cli/verify-batch.js';

const BUNDLES = 100;
/** Each bundle carries this much incompressible data (a small app; verification hashes every byte). */
const BLOB_BYTES = 2 * 1024 * 1024;

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ct-bench-verify-batch-'));
  const servers = [
    await startLogServer({ db: join(dir, 'l1.db'), logId: 'log-one', operator: 'One' }),
    await startLogServer({ db: join(dir, 'l2.db'), logId: 'log-two', operator: 'Two' }),
  ];
  try {
    const key = generateKeyPairSync('ed25519');
    const paths: string[] = [];
    for (let i = 0; i < BUNDLES; i++) {
      const app = join(dir, `app-${i}`);
      mkdirSync(join(app, 'data'), { recursive: true });
      writeFileSync(join(app, 'data', 'n.txt'), `bundle ${i}\n`.repeat(1000));
      writeFileSync(join(app, 'data', 'blob'), randomBytes(BLOB_BYTES));
      writeFileSync(join(app, 'ct.toml'), `name = "app-${i}"\nversion = "1.0.0"\n`);
      await packCtp({ from: { dir: app }, out: join(dir, `app-${i}.ctp`), mtime: 0 });
      const out = join(dir, `signed-${i}.ctp`);
      await signCtp(join(dir, `app-${i}.ctp`), { key: key.privateKey, logs: servers.map((l) => ({ id: l.logId, url: l.url })), out });
      paths.push(out);
    }
    writeFileSync(join(dir, 'trust.json'), benchTrustStoreJson(key.publicKey, servers));
    const flags = { trustStore: join(dir, 'trust.json') };
    const threads = availableParallelism();
    const batch = async (n: number): Promise<number> => {
      let allowed = 0;
      const t0 = process.hrtime.bigint();
      await verifyBatch(paths, flags, n, async (r) => {
        if ('report' in r && r.report.decision === 'ALLOW') allowed++;
      });
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (allowed !== BUNDLES) throw new Error(`batch verification allowed ${allowed} of ${BUNDLES}`);
      return ms;
    };
    await batch(1);
    await batch(threads);
    const one: number[] = [];
    const pool: number[] = [];
    for (let r = 0; r < 3; r++) {
      one.push(await batch(1));
      pool.push(await batch(threads));
    }
    const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    return [
      {
        name: `ct verify of ${BUNDLES} bundles: worker pool (${threads} threads) vs one thread`,
        value: (BUNDLES * 1000) / med(pool),
        baseline: (BUNDLES * 1000) / med(one),
        unit: 'bundles/s',
        better: 'higher',
        note: `wall time, thread start-up included, median of 3; ${threads} available cores; informative (no target)`,
      },
    ];
  } finally {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  }
}
