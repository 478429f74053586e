/**
 * Egress policy over IPv6. The bridges host/network makes are IPv4-only and so are the egress
 * rules (iptables), but the kernel gives every bridge and container interface an fe80:: link-local
 * address: without more, a container in an `egress: none` environment reached a host service
 * listening on [::] at `http://[fe80::<bridge>%eth0]:PORT/` while the IPv4 gateway was blocked.
 * Here, one client per egress value (a process in the container's network namespace, as runc would
 * run it) tries the host's listener on [::] through its bridge:
 *
 *  - over IPv4 (the gateway): as egress.test.ts shows, `none` blocked, `environment`/`any` answered;
 *  - over IPv6 link-local: refused or unreachable for every egress value (no IPv6 on our networks);
 *  - the same after the container's namespace turns IPv6 back on and is told the bridge's MAC (an
 *    app with CAP_NET_ADMIN could): the host's side of the bridge does not take IPv6 either.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager, findNetavark, type Egress } from '../../host/network/index.js';
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
  let net: NetworkManager;
  let server: Server;
  let port: number;
  const ns: Partial<Record<Egress, string>> = {};
  const bridge: Partial<Record<Egress, { name: string; mac: string; gateway: string }>> = {};

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    await findNetavark();
    stateDir = mkdtempSync(join(tmpdir(), 'ct-egress6-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 4 });
    // A service of the host on every address, IPv6 (link-local ones included) and IPv4.
    server = createServer((s) => {
      s.on('error', () => undefined); // a probe that hangs up first
      s.end('host\n');
    });
    await new Promise<void>((r) => server.listen({ host: '::', port: 0, ipv6Only: false }, r));
    port = (server.address() as AddressInfo).port;
    for (const egress of EGRESS) {
      const id = ID(`${egress}-client`);
      const att = await net.attach({ containerId: id, environment: `eg6-${egress}`, app: 'client', egress, ports: [] });
      ns[egress] = basename(att.netnsPath);
      const b = net.bridgeOf(net.store.network(`eg6-${egress}`)!);
      bridge[egress] = { name: b.bridge, mac: readFileSync(`/sys/class/net/${b.bridge}/address`, 'utf8').trim(), gateway: b.gateway };
    }
  }, 60_000);

  afterAll(async () => {
    server?.close();
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  it('has IPv6 off on the bridges and in the containers\' namespaces', () => {
    for (const egress of EGRESS) {
      expect(readFileSync(`/proc/sys/net/ipv6/conf/${bridge[egress]!.name}/disable_ipv6`, 'utf8').trim()).toBe('1');
      expect(ip('netns', 'exec', ns[egress]!, 'cat', '/proc/sys/net/ipv6/conf/eth0/disable_ipv6', '/proc/sys/net/ipv6/conf/default/disable_ipv6').split('\n').filter(Boolean)).toEqual(['1', '1']);
      // no IPv6 address at all: nothing to send from
      expect(ip('-n', ns[egress]!, '-6', 'addr', 'show').trim()).toBe('');
      expect(ip('-6', 'addr', 'show', 'dev', bridge[egress]!.name).trim()).toBe('');
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
});
