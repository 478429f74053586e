// Issue 7: verify + unpack + start of a 50 MiB image on a host (LocalRunner: open and hash the
// .ctp, verify signatures and log proofs, judge the policy, unpack every layer re-hashing it, build
// the OCI config, start under runc with a supervisor) against unpack + `runc run` alone (tar -xzf of
// the same layer, the same config.json written once, `runc run --detach`) in the same run.
// Also the curve at 5, 50 and 200 MiB: how the cost grows with the bundle.
import { execFileSync, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from './harness.js';
import { packCtp } from '../src/bundle/pack/pack.js';
import { openCtp } from '../src/bundle/read.js';
import { checkOciLayout } from '../src/bundle/check-layout.js';
import { signCtp } from '../src/attest/sign-ctp.js';
import { startLogServer } from '../src/tlog/server.js';
import { keyIdOf } from '../src/trust/keyid.js';
import { benchTrustStoreJson } from './trust-support.js';
import { parseTrustStore, trustStoreDigest } from '../src/trust/store.js';
import { PolicyStore } from '../src/policy/store.js';
import { collectFacts } from '../host/facts.js';
import { RuncRuntime } from '../host/runtime/runc.js';
import { LocalRunner } from '../host/agent/runner.js';

const MIB = 1024 * 1024;
const RUNS = 5;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/**
 * Image sizes measured besides the target's 50 MiB, for the curve of how a deploy's cost grows with
 * the bundle (CT_BENCH_DEPLOY_CURVE="" for none).
 */
const CURVE = (process.env.CT_BENCH_DEPLOY_CURVE ?? '5,200').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0 && n !== 50);

/** Medians of ours and of the baseline for an image of `mib` MiB. */
interface Point { mib: number; ours: number; base: number }

export async function run(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ct-bench-deploy-'));
  const logs: { close(): Promise<void> }[] = [];
  try {
    const key = generateKeyPairSync('ed25519');
    const servers = [
      await startLogServer({ db: join(dir, 'l1.db'), logId: 'log-one', operator: 'One' }),
      await startLogServer({ db: join(dir, 'l2.db'), logId: 'log-two', operator: 'Two' }),
    ];
    logs.push(...servers);
    const store = parseTrustStore(benchTrustStoreJson(key.publicKey, servers));
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'p.policy.yaml'), `apiVersion: cerro-torre.dev/v2\nkind: Policy\nname: p\nmode: strict\nmatch:\n  environments: [production]\nsigners:\n  - keyId: ${keyIdOf(key.publicKey)}\nlogQuorum: 2\nruntime:\n  seccomp:\n    profile: runtime-default\n`);
    const policies = new PolicyStore([join(dir, 'policies')]);
    if (!(await policies.reload()).ok) throw new Error('bench policy failed to load');
    const facts = await collectFacts();
    const stateDir = join(dir, 'host');
    const runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
    const runner = new LocalRunner({ stateDir, trust: () => ({ store, storeDigest: trustStoreDigest(store) }), policies, facts: async () => facts, runtime });
    let gen = 0;

    const measure = async (mib: number): Promise<Point> => {
      // An image of `mib` MiB: busybox plus files of mixed sizes (half random, half text-like).
      const app = join(dir, `app-${mib}`);
      mkdirSync(join(app, 'bin'), { recursive: true });
      mkdirSync(join(app, 'data'));
      copyFileSync('/bin/busybox', join(app, 'bin', 'busybox'));
      let total = 0;
      for (let i = 0; total < mib * MIB; i++) {
        const size = [4096, 64 * 1024, MIB, 4 * MIB][i % 4];
        writeFileSync(join(app, 'data', `f${i}`), i % 2 ? randomBytes(size) : Buffer.alloc(size, `line ${i}\n`));
        total += size;
      }
      writeFileSync(join(app, 'ct.toml'), 'name = "big"\nversion = "1.0.0"\n\n[runtime]\nuser = "65534:65534"\nread_only_rootfs = true\ncapabilities = []\nnetwork = "none"\ncommand = ["/bin/busybox", "sleep", "600"]\n');
      const packed = join(dir, `big-${mib}.ctp`);
      await packCtp({ from: { dir: app }, out: packed, mtime: 0 });
      rmSync(app, { recursive: true, force: true });
      const signed = await signCtp(packed, { key: key.privateKey, logs: servers.map((l) => ({ id: l.logId, url: l.url })), out: join(dir, `signed-${mib}.ctp`) });
      rmSync(packed, { force: true });
      const archive = await openCtp(signed.out);
      const image = checkOciLayout(archive);
      const ours: number[] = [];
      const base: number[] = [];
      let config: unknown;
      const layer = join(signed.out + '.layer');
      for (let i = 0; i <= RUNS; i++) {
        const appName = `big${mib}-${i}`;
        const t0 = process.hrtime.bigint();
        const out = await runner.run({ deploymentId: `d${mib}-${i}`, generation: ++gen, environment: 'production', app: appName, bundle: 'bench', bundleDigest: archive.bundleDigest, imageDigest: image.manifestDigest, download: '' }, signed.out);
        const t = Number(process.hrtime.bigint() - t0) / 1e6;
        if (out.state !== 'running') throw new Error(`bench deploy not running: ${JSON.stringify(out)}`);
        const id = runner.containerId({ environment: 'production', app: appName });
        config ??= JSON.parse(execFileSync('cat', [join(stateDir, 'containers', id, 'config.json')], { encoding: 'utf8' }));
        await runtime.delete(id, { force: true, purge: true });
        if (i > 0) ours.push(t);

        // Baseline: unpack the same layer with tar and start the same config with runc.
        const b = join(dir, `base${i}`);
        mkdirSync(join(b, 'rootfs'), { recursive: true });
        const cfg = structuredClone(config) as { root: { path: string }; linux?: { cgroupsPath?: string } };
        cfg.root.path = join(b, 'rootfs');
        if (cfg.linux) delete cfg.linux.cgroupsPath;
        writeFileSync(join(b, 'config.json'), JSON.stringify(cfg));
        const blob = archive.entries.get(`oci-layout/blobs/sha256/${image.layers[0].digest.slice(7)}`)!;
        if (i === 0) writeFileSync(layer, execFileSync('dd', [`if=${signed.out}`, 'bs=1M', `skip=${blob.dataOffset}`, `count=${blob.size}`, 'iflag=skip_bytes,count_bytes', 'status=none'], { maxBuffer: (mib + 64) * MIB }));
        const t1 = process.hrtime.bigint();
        execFileSync('tar', ['-xzf', layer, '-C', join(b, 'rootfs')]);
        const r = spawnSync('runc', ['--root', join(dir, 'runc-base'), 'run', '--detach', '--bundle', b, `base${i}`], { stdio: 'ignore' });
        const t2 = Number(process.hrtime.bigint() - t1) / 1e6;
        if (r.status !== 0) throw new Error('baseline runc run failed');
        spawnSync('runc', ['--root', join(dir, 'runc-base'), 'delete', '--force', `base${i}`], { stdio: 'ignore' });
        rmSync(b, { recursive: true, force: true });
        if (i > 0) base.push(t2);
      }
      rmSync(layer, { force: true });
      rmSync(signed.out, { force: true });
      return { mib, ours: median(ours), base: median(base) };
    };

    const target = await measure(50);
    const points = [target];
    for (const mib of CURVE) points.push(await measure(mib));
    points.sort((a, b) => a.mib - b.mib);
    runtime.close();
    const curve = points.map((p) => `${p.mib} MiB ${p.ours.toFixed(0)} vs ${p.base.toFixed(0)} ms (${(p.ours / p.base).toFixed(2)}×)`).join(', ');
    return [{ name: 'verify + unpack + start of a 50 MiB image vs tar -xzf + runc run', value: target.ours, baseline: target.base, unit: 'ms', better: 'lower', target: { max: 1.3 }, note: `median of ${RUNS}; #14 target 5; curve (ours vs tar + runc): ${curve}` }];
  } finally {
    for (const l of logs) await l.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
