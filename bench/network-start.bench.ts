// Issue 11: start of a container on a bridge network with one published port, until the port
// answers HTTP, through host/network + host/runtime (OCI config from grants, SQLite allocations,
// the stored netavark document, `netavark setup`, resolv.conf, a supervised `runc run`) against a
// shell script driving `ip netns add` + `netavark setup` + `runc run --detach` directly on the same
// config, in the same run. Needs root, runc, netavark and aardvark-dns (as CI has).
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchResult } from './harness.js';
import { buildRuntimePlan } from '../host/enforce/index.js';
import { collectFacts } from '../host/facts.js';
import { RuncRuntime } from '../host/runtime/index.js';
import { NetworkManager, findNetavark } from '../host/network/index.js';
import { attachNetwork } from '../host/agent/network-hook.js';
import { freePortPair, handBundle, handScripts, httpAnswers, median } from './net-support.js';

const RUNS = 7;

export async function run(): Promise<BenchResult[]> {
  if (process.getuid?.() !== 0) throw new Error('the network benchmark runs as root (netavark)');
  const paths = await findNetavark();
  const base = await mkdtemp(join(tmpdir(), 'ct-bench-net-'));
  const pid = process.pid;
  // The baseline container being started, if any: a failed run still tears it down.
  let pending: (() => void) | undefined;
  const net = new NetworkManager({ stateDir: join(base, 'state'), subnetBase: `10.${250 + (pid % 5)}`, bridgePrefix: `ctbo${pid % 10000}` });
  try {
    const rootfs = join(base, 'rootfs');
    await mkdir(join(rootfs, 'bin'), { recursive: true });
    await mkdir(join(rootfs, 'www'));
    await mkdir(join(rootfs, 'etc'));
    await mkdir(join(rootfs, 'tmp'));
    await chmod(join(rootfs, 'tmp'), 0o1777);
    await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
    await writeFile(join(rootfs, 'www', 'index.html'), 'ok\n');
    await writeFile(join(rootfs, 'etc', 'resolv.conf'), '');

    const facts = await collectFacts();
    const rt = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount, beforeStart: (id) => net.resume(id) });
    const app = { name: 'web', imageDigest: `sha256:${'ab'.repeat(32)}` };
    const runtime = { command: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'], user: '65534:65534', network: 'bridge', ports: ['8080/tcp'] };
    let n = 0;

    const ours = async (port: number) => {
      const id = `ctbn-${pid}-o${++n}`;
      const t0 = performance.now();
      const plan = await buildRuntimePlan({ id, rootfs, app, runtime, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}` }, facts);
      await attachNetwork(net, plan.config, { containerId: id, environment: 'bench', app: 'web', egress: 'any', ports: [{ host: port, container: 8080, address: '127.0.0.1', protocol: 'tcp' }] });
      const rec = await rt.run(id, plan.config, { appName: 'web', imageDigest: app.imageDigest });
      if (rec.status !== 'running') throw new Error(`bench container ${rec.status}`);
      await httpAnswers(port);
      const t = performance.now() - t0;
      await rt.delete(id, { force: true, purge: true });
      await net.detach(id);
      return t;
    };

    // Baseline: the same config (a netns path, a resolv.conf), a netavark document for its own
    // bridge, and a shell script doing what an operator would do by hand.
    const bridge = { name: `ctbb-${pid}`, bridge: `ctbb${pid % 10000}`, subnet: `10.${240 + (pid % 10)}.0.0/24`, gateway: `10.${240 + (pid % 10)}.0.1` };
    const plan = await buildRuntimePlan({ id: 'bench-base', rootfs, app, runtime, grants: { seccomp: 'required' } }, facts);
    plan.config.mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: join(base, 'resolv.conf'), options: ['rbind', 'ro'] });
    await writeFile(join(base, 'resolv.conf'), `nameserver ${bridge.gateway}\n`);
    const hand = await handScripts(base, paths);
    const baseline = async (port: number) => {
      const id = `ctbn-${pid}-b${++n}`;
      const bundle = await handBundle(base, plan.config, bridge, id, port);
      pending = () => hand.stop(id, bundle);
      const t0 = performance.now();
      hand.start(id, bundle);
      await httpAnswers(port);
      const t = performance.now() - t0;
      hand.stop(id, bundle);
      pending = undefined;
      await rm(bundle, { recursive: true, force: true });
      return t;
    };

    // Interleaved, after one warm-up each, so that load from other processes hits both alike.
    const a: number[] = [];
    const b: number[] = [];
    for (let i = 0; i <= RUNS; i++) {
      const [p1, p2] = await freePortPair();
      const x = await ours(p1);
      const y = await baseline(p2);
      if (i > 0) {
        a.push(x);
        b.push(y);
      }
    }
    rt.close();
    return [{
      name: 'bridge network + published port, start to the port answering: host/network + runtime vs netavark setup + runc run script',
      value: median(a), baseline: median(b), unit: 'ms', better: 'lower', target: { max: 1.3 },
      note: `median of ${RUNS}, interleaved; ours includes the OCI config, SQLite allocations, the stored setup document, supervisor`,
    }];
  } finally {
    // Whatever a failed run left: our attachments, the baseline's container and network.
    for (const row of net.store.attachments()) await net.detach(row.containerId).catch(() => undefined);
    net.close();
    pending?.();
    await rm(base, { recursive: true, force: true });
  }
}
