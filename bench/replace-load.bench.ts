// Issue 11: health-gated replace of a running HTTP app (bridge network, one published port) under
// a constant 200 req/s load on loopback, one new connection per request: how many requests fail
// during the switch (target 0). Ours: LocalRunner.run of a new signed, healthy bundle: verify,
// judge, unpack while the old one serves; the new container starts BESIDE the old one (its own
// runc id and address, no published port), is health-checked there, then the port moves to it in
// one atomic iptables-restore and the old one is drained and stopped (host/lifecycle/side-by-side.ts).
// Baseline, in the same run: the same switch by hand (runc delete + netavark teardown, then
// netavark setup + runc run) under the same load.
import { generateKeyPairSync } from 'node:crypto';
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
import type { Assignment } from '../src/protocol/messages.js';
import { buildRuntimePlan } from '../host/enforce/index.js';
import { collectFacts } from '../host/facts.js';
import { RuncRuntime } from '../host/runtime/runc.js';
import { LocalRunner } from '../host/agent/runner.js';
import { NetworkManager, findNetavark } from '../host/network/index.js';
import { constantLoad, freePortPair, handBundle, handScripts, httpAnswers } from './net-support.js';

const RATE = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const manifest = (version: string) => `name = "web"
version = "${version}"

[runtime]
user = "65534:65534"
read_only_rootfs = true
capabilities = []
network = "bridge"
ports = ["8080/tcp"]
command = ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]
stop_grace_period = 1

[runtime.healthcheck]
type = "http"
port = 8080
path = "/"
interval = 0.1
timeout = 1
retries = 20
start_period = 0
`;

/** Runs `load` around `act` (0.5 s before and after) and counts what failed. */
async function underLoad(port: number, act: () => Promise<void>): Promise<{ failed: number; sent: number; what: string[]; ms: number }> {
  const load = constantLoad(port, RATE);
  await sleep(500);
  const t0 = performance.now();
  await act();
  const ms = performance.now() - t0;
  await sleep(500);
  const results = await load.stop();
  const failed = results.filter((r) => !r.ok);

  const what = new Map<string, number>();
  for (const f of failed) what.set(String(f.what), (what.get(String(f.what)) ?? 0) + 1);
  return { failed: failed.length, sent: results.length, what: [...what].map(([k, n]) => `${n} ${k}`), ms };
}

export async function run(): Promise<BenchResult[]> {
  if (process.getuid?.() !== 0) throw new Error('the replace benchmark runs as root (netavark)');
  const paths = await findNetavark();
  const dir = mkdtempSync(join(tmpdir(), 'ct-bench-replace-'));
  const pid = process.pid;
  const logs: { close(): Promise<void> }[] = [];
  const net = new NetworkManager({ stateDir: join(dir, 'host'), subnetBase: `10.${245 + (pid % 5)}`, bridgePrefix: `ctbr${pid % 10000}r` });
  let runtime: RuncRuntime | undefined;
  let handLeft: (() => void) | undefined;
  try {
    // Two versions of one app, signed and logged as a builder would, judged by a policy that lets
    // production publish loopback ports.
    const key = generateKeyPairSync('ed25519');
    const servers = [
      await startLogServer({ db: join(dir, 'l1.db'), logId: 'log-one', operator: 'One' }),
      await startLogServer({ db: join(dir, 'l2.db'), logId: 'log-two', operator: 'Two' }),
    ];
    logs.push(...servers);
    const bundles: { path: string; bundleDigest: string; imageDigest: string }[] = [];
    for (const version of ['v1', 'v2']) {
      const app = join(dir, version);
      mkdirSync(join(app, 'bin'), { recursive: true });
      mkdirSync(join(app, 'www'));
      copyFileSync('/bin/busybox', join(app, 'bin', 'busybox'));
      writeFileSync(join(app, 'www', 'index.html'), `${version}\n`);
      writeFileSync(join(app, 'ct.toml'), manifest(version));
      await packCtp({ from: { dir: app }, out: join(dir, `${version}.ctp`), mtime: 0 });
      const signed = await signCtp(join(dir, `${version}.ctp`), { key: key.privateKey, logs: servers.map((l) => ({ id: l.logId, url: l.url })), out: join(dir, `${version}.signed.ctp`) });
      const archive = await openCtp(signed.out);
      bundles.push({ path: signed.out, bundleDigest: archive.bundleDigest, imageDigest: checkOciLayout(archive).manifestDigest });
    }
    const store = parseTrustStore(benchTrustStoreJson(key.publicKey, servers));
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'p.policy.yaml'), [
      'apiVersion: cerro-torre.dev/v2', 'kind: Policy', 'name: p', 'mode: strict', 'match:', '  environments: [production]',
      'signers:', `  - keyId: ${keyIdOf(key.publicKey)}`, 'logQuorum: 2', 'runtime:', '  seccomp:', '    profile: runtime-default',
      '  network:', '    publish:', '      - ports: "1024-65535"', '    egress: any', '',
    ].join('\n'));
    const policies = new PolicyStore([join(dir, 'policies')]);
    if (!(await policies.reload()).ok) throw new Error('bench policy failed to load');
    const facts = await collectFacts();
    const stateDir = join(dir, 'host');
    runtime = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount, beforeStart: (id) => net.resume(id) });
    const runner = new LocalRunner({ stateDir, trust: () => ({ store, storeDigest: trustStoreDigest(store) }), policies, facts: async () => facts, runtime, network: net });

    const [port, handPort] = await freePortPair();
    const assign = (i: number): Assignment => ({
      deploymentId: `d${i}`, generation: i + 1, environment: 'production', app: `web-${pid}`, bundle: 'bench', download: '',
      bundleDigest: bundles[i].bundleDigest, imageDigest: bundles[i].imageDigest, ports: [{ host: port, container: 8080, address: '127.0.0.1', protocol: 'tcp' }],
    });
    const first = await runner.run(assign(0), bundles[0].path);
    if (first.state !== 'running') throw new Error(`v1 not running: ${JSON.stringify(first)}`);
    await httpAnswers(port);
    const ours = await underLoad(port, async () => {
      const out = await runner.run(assign(1), bundles[1].path);
      if (out.state !== 'running') throw new Error(`v2 not running: ${JSON.stringify(out)}`);
    });
    // Control, same run: the same load on the new container with nothing changing, for as long as
    // the replace took (at most 10 s). Failures here are the machine's (a starved busybox httpd
    // whose backlog overflows), not the switch's.
    const control = await underLoad(port, async () => {
      await sleep(Math.min(ours.ms, 10_000));
    });

    // Baseline: the same app config started by hand, then replaced by hand under the same load.
    const hand = await handScripts(dir, paths);
    const bridge = { name: `ctbh-${pid}`, bridge: `ctbh${pid % 10000}`, subnet: `10.${235 + (pid % 5)}.0.0/24`, gateway: `10.${235 + (pid % 5)}.0.1` };
    writeFileSync(join(dir, 'resolv.conf'), `nameserver ${bridge.gateway}\n`);
    const rootfs = join(dir, 'v1');
    const plan = await buildRuntimePlan({ id: 'bench-hand', rootfs, app: { name: 'web', imageDigest: bundles[0].imageDigest }, runtime: { command: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'], user: '65534:65534', network: 'bridge' }, grants: { seccomp: 'required' } }, facts);
    plan.config.mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: join(dir, 'resolv.conf'), options: ['rbind', 'ro'] });
    const b1 = await handBundle(dir, plan.config, bridge, `ctbh-${pid}-1`, handPort);
    hand.start(`ctbh-${pid}-1`, b1);
    handLeft = () => hand.stop(`ctbh-${pid}-1`, b1);
    await httpAnswers(handPort);
    const b2 = await handBundle(dir, plan.config, bridge, `ctbh-${pid}-2`, handPort);
    const baseline = await underLoad(handPort, async () => {
      hand.stop(`ctbh-${pid}-1`, b1);
      handLeft = () => hand.stop(`ctbh-${pid}-2`, b2);
      hand.start(`ctbh-${pid}-2`, b2);
      await httpAnswers(handPort);
    });
    return [{
      name: `health-gated replace of an HTTP app with a published port under ${RATE} req/s: failed requests, LocalRunner vs stop + start by hand (netavark + runc)`,
      value: ours.failed, baseline: baseline.failed, unit: 'requests', better: 'lower', target: { max: 0 },
      note: `ours ${ours.failed}/${ours.sent} failed (${ours.what.join(', ') || 'none'}) in ${Math.round(ours.ms)} ms; control (same load, nothing changing) ${control.failed}/${control.sent} (${control.what.join(', ') || 'none'}); by hand (stop, then start) ${baseline.failed}/${baseline.sent} (${baseline.what.join(', ') || 'none'}); target 0: the new container runs beside the old one and the port moves to it atomically once it is healthy (ECONNREFUSED/ECONNRESET would be the switch's; ETIMEDOUT after 10 s is a starved machine, compare the control)`,
    }];
  } finally {
    handLeft?.();
    if (runtime) {
      for (const c of await runtime.list().catch(() => [])) await runtime.delete(c.id, { force: true, purge: true }).catch(() => undefined);
      runtime.close();
    }
    for (const row of net.store.attachments()) await net.detach(row.containerId).catch(() => undefined);
    net.close();
    for (const l of logs) await l.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
