/**
 * Egress policy over IPv6. The bridges host/network makes are IPv4-only and so are the egress
 * rules (iptables), but the kernel gives every bridge and container interface an fe80:: link-local
 * address: without more, a container in an `egress: none` environment reached a host service
 * listening on [::] at `http://[fe80::<bridge>%eth0]:PORT/` while the IPv4 gateway was blocked.
 * Here, one container per egress value (runc, its OCI config from attachNetwork) and a client in its
 * network namespace try the host's listener on [::] through its bridge:
 *
 *  - over IPv4 (the gateway): as egress.test.ts shows, `none` blocked, `environment`/`any` answered;
 *  - over IPv6 link-local: refused or unreachable for every egress value (no IPv6 on our networks);
 *  - the same after the container's namespace turns IPv6 back on and is told the bridge's MAC (an
 *    app with CAP_NET_ADMIN could): the host's side of the bridge does not take IPv6 either;
 *  - ::1 still works inside (IPv6 is off on eth0, not on lo);
 *  - containers an earlier agent started with IPv6 on lose it on the bridge (and in their
 *    namespace) at the next agent's recover().
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { attachNetwork } from '../../host/agent/network-hook.js';
import { buildRuntimePlan } from '../../host/enforce/index.js';
import { collectFacts } from '../../host/facts.js';
import { NetworkManager, findNetavark, type Egress } from '../../host/network/index.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { DIGEST, makeRootfs, requireHostTools } from '../host/support.js';
import { claimSubnetBase } from '../support/subnets.js';
import { listArtifacts } from './artifacts.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ct6${pid % 100000}g`;
const ID = (name: string) => `ct6-${pid}-${name}`;
const scope = { netnsPrefix: `ct6-${pid}-`, bridgePrefix: PREFIX, subnetBase: BASE };
const EGRESS = ['none', 'environment', 'any'] as const;

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * The bridge's link-local address: the one it has, or (IPv6 off) the EUI-64 one of its MAC, which
 * the kernel would give it. (A bridge made its address from the MAC it had then, before its first
 * port gave it another.)
 */
function bridgeLinkLocal(b: { name: string; mac: string }): string {
  const has = ip('-6', 'addr', 'show', 'dev', b.name).match(/inet6 (fe80::[0-9a-f:]+)\//);
  return has ? has[1] : linkLocal(b.mac);
}

/** The EUI-64 link-local address the kernel gives an interface with this MAC (whether or not it has it now). */
function linkLocal(mac: string): string {
  const b = mac.split(':').map((h) => parseInt(h, 16));
  b[0] ^= 0x02;
  const g = [b[0] << 8 | b[1], b[2] << 8 | 0xff, 0xfe << 8 | b[3], b[4] << 8 | b[5]];
  return `fe80::${g.map((x) => x.toString(16)).join(':')}`;
}

/** Until no IPv6 address of the namespace is still tentative (duplicate address detection, ~1 s): only then can it be a source. */
async function settled(ns: string): Promise<void> {
  for (let i = 0; i < 50 && /tentative/.test(ip('-n', ns, '-6', 'addr', 'show')); i++) await new Promise((r) => setTimeout(r, 100));
  expect(ip('-n', ns, '-6', 'addr', 'show')).not.toMatch(/tentative/);
}

/** A TCP connection from inside a namespace: `connected`, or why not (an errno code, `timeout` after 2 s). */
function connectFrom(ns: string, host: string, port: number): Promise<string> {
  const script = `const s=require('net').connect({host:${JSON.stringify(host)},port:${port}});s.setTimeout(2000);` +
    `s.on('connect',()=>{console.log('connected');s.destroy()});s.on('timeout',()=>{console.log('timeout');s.destroy()});s.on('error',(e)=>console.log(e.code))`;
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 }, (err, stdout) => resolve(err ? `failed: ${err.message}` : stdout.trim()));
  });
}

describe('egress policy over IPv6 (netavark bridges)', () => {
  let stateDir: string;
  let base: string;
  let rt: RuncRuntime;
  let net: NetworkManager;
  let server: Server;
  let port: number;
  const ns: Partial<Record<Egress, string>> = {};
  const bridge: Partial<Record<Egress, { name: string; mac: string; gateway: string }>> = {};

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    requireHostTools();
    await findNetavark();
    const facts = await collectFacts();
    let rootfs: string;
    ({ base, rootfs } = await makeRootfs());
    stateDir = mkdtempSync(join(tmpdir(), 'ct-egress6-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 4 });
    rt = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount, beforeStart: (id) => net.resume(id) });
    // A service of the host on every address, IPv6 (link-local ones included) and IPv4.
    server = createServer((s) => {
      s.on('error', () => undefined); // a probe that hangs up first
      s.end('host\n');
    });
    await new Promise<void>((r) => server.listen({ host: '::', port: 0, ipv6Only: false }, r));
    port = (server.address() as AddressInfo).port;
    for (const egress of EGRESS) {
      const id = ID(`${egress}-client`);
      const config = (await buildRuntimePlan({
        id, rootfs, app: { name: 'client', imageDigest: DIGEST }, runtime: { command: ['/bin/sh', '-c', 'while true; do sleep 1; done'], network: 'bridge' },
        grants: { seccomp: 'required' }, cgroupsPath: rt.cgroupsPathFor(id),
      }, facts)).config;
      await attachNetwork(net, config, { containerId: id, environment: `eg6-${egress}`, app: 'client', egress, ports: [] });
      expect((await rt.run(id, config, { appName: 'client' })).status).toBe('running');
      ns[egress] = basename(net.attachment(id)!.netns);
      const b = net.bridgeOf(net.store.network(`eg6-${egress}`)!);
      bridge[egress] = { name: b.bridge, mac: readFileSync(`/sys/class/net/${b.bridge}/address`, 'utf8').trim(), gateway: b.gateway };
    }
  }, 60_000);

  afterAll(async () => {
    server?.close();
    for (const c of rt?.store.list() ?? []) await rt.delete(c.id, { force: true }).catch(() => undefined);
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    rt?.close();
    net?.close();
    for (const d of [base, stateDir]) if (d) rmSync(d, { recursive: true, force: true });
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  it('has IPv6 off on the bridges and in the containers\' namespaces, but for ::1', async () => {
    for (const egress of EGRESS) {
      expect(readFileSync(`/proc/sys/net/ipv6/conf/${bridge[egress]!.name}/disable_ipv6`, 'utf8').trim()).toBe('1');
      // eth0 (and any interface made later) off, lo on
      expect(ip('netns', 'exec', ns[egress]!, 'cat', '/proc/sys/net/ipv6/conf/eth0/disable_ipv6', '/proc/sys/net/ipv6/conf/default/disable_ipv6', '/proc/sys/net/ipv6/conf/lo/disable_ipv6').split('\n').filter(Boolean)).toEqual(['1', '1', '0']);
      // no IPv6 address but ::1: nothing to send from towards the bridge
      expect(ip('-n', ns[egress]!, '-6', '-o', 'addr', 'show').trim().split('\n').map((l) => l.split(/\s+/).slice(1, 4).join(' '))).toEqual(['lo inet6 ::1/128']);
      // as the app sees it (the kernel's own list: lo's ::1, nothing on eth0)
      const inside = await rt.exec(ID(`${egress}-client`), ['cat', '/proc/net/if_inet6'], 5000);
      expect(inside.code).toBe(0);
      expect(inside.output.trim().split('\n').map((l) => `${l.trim().split(/\s+/)[0]} ${l.trim().split(/\s+/).pop()}`)).toEqual(['00000000000000000000000000000001 lo']);
      expect(ip('-6', 'addr', 'show', 'dev', bridge[egress]!.name).trim()).toBe('');
    }
  });

  it('lets the app listen and connect on ::1 in its namespace', async () => {
    const script = `const net=require('net');const srv=net.createServer((s)=>s.end('ok'));srv.on('error',(e)=>{console.log('listen '+e.code);process.exit()});` +
      `srv.listen(0,'::1',()=>{const c=net.connect(srv.address().port,'::1');c.on('data',(d)=>{console.log(String(d));process.exit()});c.on('error',(e)=>{console.log('connect '+e.code);process.exit()})})`;
    for (const egress of EGRESS) {
      expect(execFileSync('ip', ['netns', 'exec', ns[egress]!, process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 }).trim()).toBe('ok');
    }
  });

  it('reaches the host over IPv4 exactly as egress allows, and over IPv6 link-local never', async () => {
    for (const egress of EGRESS) await settled(ns[egress]!);
    const seen = await Promise.all(EGRESS.flatMap((egress) => [
      connectFrom(ns[egress]!, bridge[egress]!.gateway, port).then((r) => `${egress} ipv4: ${r}`),
      connectFrom(ns[egress]!, `${bridgeLinkLocal(bridge[egress]!)}%eth0`, port).then((r) => `${egress} ipv6: ${r === 'connected' ? 'connected' : `blocked (${r})`}`),
    ]));
    expect(seen).toEqual([
      'none ipv4: timeout', expect.stringMatching(/^none ipv6: blocked/),
      'environment ipv4: connected', expect.stringMatching(/^environment ipv6: blocked/),
      'any ipv4: connected', expect.stringMatching(/^any ipv6: blocked/),
    ]);
  }, 30_000);

  it('keeps the host out of reach over IPv6 when the container\'s namespace turns IPv6 back on', async () => {
    // What an app allowed CAP_NET_ADMIN could do in its own namespace: IPv6 on, the bridge's MAC as
    // the neighbour (the bridge answers no neighbour solicitation without IPv6). Shown against the
    // `none` environment, whose intent it would break.
    const { name, mac } = bridge.none!;
    const target = bridgeLinkLocal(bridge.none!);
    ip('netns', 'exec', ns.none!, 'sh', '-c', 'echo 0 > /proc/sys/net/ipv6/conf/all/disable_ipv6; echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6');
    ip('-n', ns.none!, 'neigh', 'replace', target, 'lladdr', mac, 'dev', 'eth0', 'nud', 'permanent');
    // The client has its link-local address now (duplicate address detection can take a moment).
    for (let i = 0; i < 50 && !/fe80::/.test(ip('-n', ns.none!, '-6', 'addr', 'show', 'dev', 'eth0')); i++) await new Promise((r) => setTimeout(r, 100));
    await settled(ns.none!);
    expect(ip('-n', ns.none!, '-6', 'addr', 'show', 'dev', 'eth0')).toMatch(/fe80::/);
    expect(await connectFrom(ns.none!, `${target}%eth0`, port)).toMatch(/^(timeout|ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EADDRNOTAVAIL)$/);
    // dropped by the host's side, which the namespace does not own
    expect(readFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, 'utf8').trim()).toBe('1');
  }, 30_000);

  it('turns IPv6 off on the bridge and in the namespace of a container an earlier agent started with it on, at the next agent\'s recover()', async () => {
    const { name } = bridge.any!;
    const conf = (k: string) => ip('netns', 'exec', ns.any!, 'cat', `/proc/sys/net/ipv6/conf/${k}/disable_ipv6`).trim();
    // What an agent before the change left: IPv6 on on both sides of the bridge.
    writeFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, '0\n');
    ip('netns', 'exec', ns.any!, 'sh', '-c', 'echo 0 > /proc/sys/net/ipv6/conf/default/disable_ipv6; echo 0 > /proc/sys/net/ipv6/conf/eth0/disable_ipv6');
    expect([readFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, 'utf8').trim(), conf('eth0'), conf('default')]).toEqual(['0', '0', '0']);
    // The upgraded agent: a new manager on the same state, its first inventory (every container running).
    const next = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 4 });
    try {
      expect(await next.recover(() => 'running')).toEqual([]);
    } finally {
      next.close();
    }
    expect(readFileSync(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, 'utf8').trim()).toBe('1');
    expect([conf('eth0'), conf('default'), conf('lo')]).toEqual(['1', '1', '0']);
    expect((await rt.state(ID('any-client'))).status).toBe('running');
  }, 30_000);
});
