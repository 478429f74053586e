/**
 * Apps of one environment with different egress, on the environment's one bridge (netavark 1.4,
 * made by host/network). Egress was the network's: each attach overwrote it, and the bridge's
 * rules were those of the container attached last, so an app granted `none` got the egress of a
 * neighbour attached after it (and a neighbour granted `any` lost it to a `none` one). Each
 * container now has its own, by its address (host/network/egress.ts):
 *
 * | container | egress        | peer of its environment | host listener | outside listener | a host resolver (UDP 53) not its gateway |
 * |-----------|---------------|-------------------------|---------------|------------------|------------------------------------------|
 * | shut      | `none`        | yes                     | no            | no               | no                                       |
 * | open      | `environment` | yes                     | yes           | no               | yes                                      |
 * | wide      | `any`         | yes                     | yes           | yes              | yes                                      |
 *
 * They are attached `none` first and `environment` last (the old code gave all three
 * `environment`). The outside is a namespace of its own behind a veth, routed by the host.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager, findNetavark, type Egress } from '../../host/network/index.js';
import { claimSubnetBase } from '../support/subnets.js';
import { listArtifacts } from './artifacts.js';
import { ask as askIn, fetchIn, makeOutside, removeOutside, sniffed, untilAnswering } from './probes.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ctm${pid % 100000}g`;
const ID = (name: string) => `ctm-${pid}-${name}`;
const scope = { netnsPrefix: `ctm-${pid}-`, bridgePrefix: PREFIX, subnetBase: BASE };
const OUT_NS = ID('outside');
const OUT_HOST_IF = `ctmo${pid % 100000}`;
const OUT = { host: `${BASE}.200.1`, ns: `${BASE}.200.2` };
const OUTSIDE = { ns: OUT_NS, hostIf: OUT_HOST_IF, host: OUT.host, addr: OUT.ns };
const ENV = 'mixed';
const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
/** In the order they are attached: the one attached last used to set the egress of all. */
const APPS: readonly [string, Egress][] = [['peer', 'none'], ['shut', 'none'], ['wide', 'any'], ['open', 'environment']];

/** A negative probe's packets: from `src` to dst:port; `local` when the host is their destination. */
interface Counted {
  label: string;
  src: string;
  dst: string;
  proto: 'tcp' | 'udp';
  port: number;
  local: boolean;
}

/**
 * Rules without a target that count a negative probe's packets: `sent` in raw PREROUTING, which
 * every packet from the bridge passes before anything else; `through` where only a packet that
 * passed the mangle table's verdict (the bridge's DROP) and filter's comes: nat INPUT (the first
 * packet of a connection to the host) or mangle POSTROUTING (one routed out; netavark masquerades
 * it after that). As [table, chain, ...spec].
 */
function countingRules(c: Counted, bridge: string): string[][] {
  const match = ['-s', `${c.src}/32`, '-d', `${c.dst}/32`, '-p', c.proto, '-m', c.proto, '--dport', String(c.port)];
  return [
    ['raw', 'PREROUTING', ...match, '-m', 'comment', '--comment', `${c.label}-sent`],
    // Not a frame bridged back onto the bridge: with br_netfilter it passes mangle POSTROUTING
    // too (`-o` the bridge), and it never left (a frame for a gateway MAC the bridge no longer has).
    c.local
      ? ['nat', 'INPUT', ...match, '-m', 'comment', '--comment', `${c.label}-through`]
      : ['mangle', 'POSTROUTING', ...match, '!', '-o', bridge, '-m', 'comment', '--comment', `${c.label}-through`],
  ];
}

/** The packets the counting rules of `label` saw. */
function counted(label: string): { sent: number; through: number } {
  const lines = run('iptables-save', '-c').split('\n');
  const n = (which: string) => {
    const line = lines.find((l) => l.endsWith(` --comment ${label}-${which}`));
    if (!line) throw new Error(`counting rule ${label}-${which} is missing`);
    return Number(/^\[(\d+):/.exec(line)![1]);
  };
  return { sent: n('sent'), through: n('through') };
}

/**
 * From inside a namespace, with a raw socket (what CAP_NET_RAW allows a container) and its own
 * source address: TCP segments conntrack calls INVALID, an RST carrying data and a SYN+FIN
 * carrying data, to dst:80; the data is `CTMARK-<tag>-RST` and `CTMARK-<tag>-SYNFIN`.
 */
const INVALID = `import socket, struct, sys
src, dst, tag = sys.argv[1:4]
def csum(b):
    b += b'\\0' * (len(b) % 2)
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def segment(flags, data, sport):
    h = struct.pack('!HHIIBBHHH', sport, 80, 1000, 0, 5 << 4, flags, 1024, 0, 0)
    c = csum(socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(h) + len(data)) + h + data)
    h = h[:16] + struct.pack('!H', c) + h[18:]
    return struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(h) + len(data), 1, 0, 64, 6, 0, socket.inet_aton(src), socket.inet_aton(dst)) + h + data
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(segment(0x04, ('CTMARK-%s-RST' % tag).encode(), 40002), (dst, 0))
s.sendto(segment(0x03, ('CTMARK-%s-SYNFIN' % tag).encode(), 40003), (dst, 0))`;

describe('egress per container in one environment', () => {
  let stateDir: string;
  let net: NetworkManager;
  let gateway: string;
  let bridge: string;
  let resolver: Socket | undefined;
  const www = mkdtempSync(join(tmpdir(), 'ct-egress-mixed-www-'));
  const procs: ChildProcess[] = [];
  const servers: Server[] = [];

  const nsOf = (id: string): string => (id === OUT_NS ? id : basename(net.attachment(id)!.netns));

  const fetchFrom = (id: string, url: string): Promise<string> => fetchIn(nsOf(id), url);
  const ask = (id: string, server: string, name: string): Promise<string> => askIn(nsOf(id), server, name);

  /**
   * Until aardvark-dns answers the peer again: netavark makes it reload its records at every
   * setup and teardown, and a query in the middle of that goes unanswered, whatever the rules.
   */
  const dnsSettled = async () => {
    for (let i = 0; i < 10 && (await ask(ID('peer'), gateway, 'peer')) !== 'answered'; i++) await new Promise((r) => setTimeout(r, 200));
  };

  const EXPECTED: Record<string, string[]> = {
    shut: ['shut → peer: peer', 'shut → host: blocked', 'shut → outside: blocked', 'shut → dns: answered', 'shut → host dns: silent'],
    open: ['open → peer: peer', 'open → host: host', 'open → outside: blocked', 'open → dns: answered', 'open → host dns: answered'],
    wide: ['wide → peer: peer', 'wide → host: host', 'wide → outside: outside', 'wide → dns: answered', 'wide → host dns: answered'],
  };

  /**
   * What each app reaches, as `<app> → <what>: <answer>`, for apps whose egress is that of one of
   * EXPECTED's (`as`: late has shut's). A probe that got nothing where something is expected is
   * asked again, twice at most: on this shared 2-core machine a probe's process may start after
   * its timeout. Where nothing is expected, the probe's silence proves nothing (a probe that never
   * sent anything is silent too): the answer counts only when counting rules (counted()) saw its
   * packets come from the bridge and none get past the bridge's DROP; a probe whose packets were
   * not seen is asked again, one whose packets got past reads `… (past the DROP)`.
   */
  const reaches = async (apps: readonly string[] = ['shut', 'open', 'wide'], as: Record<string, string> = {}): Promise<string[]> => {
    await dnsSettled();
    const peer = net.attachment(ID('peer'))!.address;
    const probes = apps.flatMap((app) => ([
      ['peer', () => fetchFrom(ID(app), `http://${peer}:8080/`), peer, 'tcp', 8080],
      ['host', () => fetchFrom(ID(app), `http://${gateway}:8080/`), gateway, 'tcp', 8080],
      ['outside', () => fetchFrom(ID(app), `http://${OUT.ns}:8080/`), OUT.ns, 'tcp', 8080],
      ['dns', () => ask(ID(app), gateway, 'peer'), gateway, 'udp', 53],
      ['host dns', () => ask(ID(app), OUT.host, 'peer'), OUT.host, 'udp', 53],
    ] as const).map(([what, probe, dst, proto, port], k) => {
      const expected = EXPECTED[as[app] ?? app][k].split(': ')[1];
      const negative = expected === 'blocked' || expected === 'silent';
      return { app, what, probe, expected, count: negative ? { label: `${ID('count')}-${app}-${k}`, src: net.attachment(ID(app))!.address, dst, proto, port, local: dst !== OUT.ns } : undefined };
    }));
    const counting = probes.flatMap((p) => (p.count ? countingRules(p.count, bridge) : []));
    for (const [table, chain, ...spec] of counting) run('iptables', '-w', '-t', table, '-I', chain, '1', ...spec);
    try {
      return await Promise.all(probes.map(async ({ app, what, probe, expected, count }) => {
        const judged = async () => {
          const got = await probe();
          if (!count) return got;
          const { sent, through } = counted(count.label);
          return through > 0 ? `${got} (past the DROP)` : sent === 0 ? 'nothing sent' : got;
        };
        let got = await judged();
        for (let i = 0; i < 2 && got !== expected && (got === 'blocked' || got === 'silent' || got === 'nothing sent'); i++) got = await judged();
        return `${app} → ${what}: ${got}`;
      }));
    } finally {
      for (const [table, chain, ...spec] of counting) run('iptables', '-w', '-t', table, '-D', chain, ...spec);
    }
  };

  /** The bridge's MAC: the gateway's, in its neighbours' ARP caches. */
  const bridgeMac = () => run('cat', `/sys/class/net/${bridge}/address`).trim();

  /**
   * Makes the container's veth (the host's side) the port of the bridge with the lowest MAC: a
   * bridge whose MAC nobody set takes that one, and took the next when it left (bridge-mac.ts).
   * Then its neighbours learn the gateway's MAC afresh (a ping's ARP; ARP is not filtered, the
   * ping of a `none` one may go unanswered), as they would have, the veths' MACs being random:
   * what they hold when it leaves is the MAC the bridge has now.
   */
  const lowestMac = (id: string, neighbours: readonly string[]) => {
    const peer = run('ip', 'netns', 'exec', nsOf(id), 'cat', '/sys/class/net/eth0/iflink').trim();
    const veth = run('ls', `/sys/class/net/${bridge}/brif`).split('\n').find((p) => p && run('cat', `/sys/class/net/${p}/ifindex`).trim() === peer);
    if (!veth) throw new Error(`no port of ${bridge} is the veth of ${id}`);
    run('ip', 'link', 'set', 'dev', veth, 'address', '02:00:00:00:00:01');
    for (const n of neighbours) {
      run('ip', 'netns', 'exec', nsOf(ID(n)), 'ip', 'neigh', 'flush', 'all');
      try {
        run('ip', 'netns', 'exec', nsOf(ID(n)), 'busybox', 'ping', '-c', '1', '-W', '1', gateway);
      } catch {
        // unanswered: its ARP was all it was for
      }
      expect(run('ip', 'netns', 'exec', nsOf(ID(n)), 'ip', 'neigh', 'show', gateway)).toContain(bridgeMac());
    }
  };

  /** Our egress rules of the bridge, as iptables-save prints them. */
  const ours = () => execFileSync('iptables-save', ['-t', 'mangle'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`cerro-torre egress ${bridge}"`));

  const recover = async () => {
    const next = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    try {
      expect(await next.recover(() => 'running')).toEqual([]);
    } finally {
      next.close();
    }
  };

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    await findNetavark();
    stateDir = mkdtempSync(join(tmpdir(), 'ct-egress-mixed-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    for (const [what, text] of [['peer', 'peer'], ['outside', 'outside']]) {
      mkdirSync(join(www, what));
      writeFileSync(join(www, what, 'index.html'), `${text}\n`);
    }
    for (const [app, egress] of APPS) await net.attach({ containerId: ID(app), environment: ENV, app, egress, ports: [] });
    ({ gateway, bridge } = net.bridgeOf(net.store.network(ENV)!));
    procs.push(spawn('ip', ['netns', 'exec', nsOf(ID('peer')), 'busybox', 'httpd', '-f', '-p', '8080', '-h', join(www, 'peer')], { stdio: 'ignore' }));
    // A service of the host, on the address the bridge gives the host.
    const srv = createServer((_req, res) => res.end('host\n'));
    await new Promise<void>((r) => srv.listen(8080, gateway, r));
    servers.push(srv);

    // The outside: a namespace behind a veth, routed by the host (what `any` masquerades to).
    makeOutside(OUTSIDE);
    procs.push(spawn('ip', ['netns', 'exec', OUT_NS, 'busybox', 'httpd', '-f', '-p', '8080', '-h', join(www, 'outside')], { stdio: 'ignore' }));
    // A resolver of the host on another of its addresses (a dnsmasq on a LAN address): it answers anything.
    resolver = createSocket('udp4');
    resolver.on('message', (msg, from) => resolver!.send(msg, from.port, from.address));
    await new Promise<void>((r) => resolver!.bind(53, OUT.host, r));
    // Every listener answers before anything is judged.
    await untilAnswering([() => fetchFrom(OUT_NS, `http://${OUT.ns}:8080/`), () => fetchFrom(ID('peer'), 'http://127.0.0.1:8080/')]);
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const s of servers) s.close();
    resolver?.close();
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    removeOutside(OUTSIDE);
    for (const d of [www, stateDir]) if (d) rmSync(d, { recursive: true, force: true });
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  it('lets each container reach what its own egress allows, whatever its neighbours\' and whichever was attached last', async () => {
    expect(await reaches()).toEqual([...EXPECTED.shut, ...EXPECTED.open, ...EXPECTED.wide]);
  }, 60_000);

  it('rebuilds exactly these rules at recover() from rules of one egress for the whole bridge (an earlier agent\'s), and leaves them alone then', async () => {
    const before = ours();
    // What an earlier agent wrote after `wide` attached: `any` for the bridge.
    for (const l of before) execFileSync('sh', ['-c', `iptables -t mangle ${l.replace(/^-A/, '-D')}`]);
    const tag = ['-m', 'comment', '--comment', `cerro-torre egress ${bridge}`];
    execFileSync('iptables', ['-t', 'mangle', '-I', 'FORWARD', '-i', bridge, '-o', `${PREFIX}+`, '-m', 'conntrack', '--ctstate', 'NEW', ...tag, '-j', 'DROP']);
    execFileSync('iptables', ['-t', 'mangle', '-I', 'FORWARD', '-i', bridge, '-o', bridge, ...tag, '-j', 'RETURN']);
    expect(await fetchFrom(ID('shut'), `http://${OUT.ns}:8080/`)).toBe('outside');
    await recover();
    expect(ours()).toEqual(before);
    expect(await reaches()).toEqual([...EXPECTED.shut, ...EXPECTED.open, ...EXPECTED.wide]);
    // The same rules are not written again: their counters go on.
    const counters = () => execFileSync('iptables-save', ['-c', '-t', 'mangle'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`cerro-torre egress ${bridge}"`));
    const seen = counters();
    expect(seen.some((l) => !l.startsWith('[0:0]'))).toBe(true);
    await recover();
    expect(counters()).toEqual(seen);
  }, 60_000);

  it('keeps every neighbour\'s rules when one app leaves, and the address it leaves gets no egress of its', async () => {
    const wide = net.attachment(ID('wide'))!.address;
    // The gateway's MAC stays when the port with the lowest MAC leaves: it moved to the next
    // lowest, and its neighbours' frames (DNS, host, outside) went to the old one for ~40 s.
    lowestMac(ID('wide'), ['peer', 'shut', 'open']);
    const mac = bridgeMac();
    await net.detach(ID('wide'));
    expect(bridgeMac()).toBe(mac);
    expect(ours().filter((l) => l.includes(`-s ${wide}/32`))).toEqual([]);
    expect(await reaches(['shut', 'open'])).toEqual([...EXPECTED.shut, ...EXPECTED.open]);
    // The next container of the environment gets the address `wide` had; its egress is its own.
    await net.attach({ containerId: ID('late'), environment: ENV, app: 'late', egress: 'none', ports: [] });
    expect(net.attachment(ID('late'))!.address).toBe(wide);
    expect(await reaches(['late', 'open'], { late: 'shut' })).toEqual([...EXPECTED.shut.map((l) => l.replace('shut', 'late')), ...EXPECTED.open]);
    // Suspended (stopped) and resumed, a container gets its own egress back.
    lowestMac(ID('open'), ['peer', 'shut', 'late']);
    await net.suspend(ID('open'));
    expect(bridgeMac()).toBe(mac);
    expect(await reaches(['shut'])).toEqual(EXPECTED.shut);
    await net.resume(ID('open'));
    expect(await reaches(['open', 'shut'])).toEqual([...EXPECTED.open, ...EXPECTED.shut]);
  }, 120_000);

  it('drops what conntrack calls INVALID from a `none` container with CAP_NET_RAW (an RST or a SYN+FIN with data), which passed a DROP of NEW connections', async () => {
    // Last, with a control of its own. Run before the detach above, its segments (sent to the
    // gateway's MAC) most likely refreshed the ARP entries that the detach then left stale: the bridge's
    // MAC moved when the port with the lowest MAC left (bridge-mac.ts), and that test failed.
    await net.attach({ containerId: ID('control'), environment: ENV, app: 'control', egress: 'any', ports: [] });
    const seen = await sniffed(OUT_NS, 'WIDE-SYNFIN', () => {
      run('ip', 'netns', 'exec', nsOf(ID('shut')), 'python3', '-c', INVALID, net.attachment(ID('shut'))!.address, OUT.ns, 'SHUT');
      // The control, sent after: `any` leaves the host, so its segments arrive and show the sniffer sees them.
      run('ip', 'netns', 'exec', nsOf(ID('control')), 'python3', '-c', INVALID, net.attachment(ID('control'))!.address, OUT.ns, 'WIDE');
    });
    expect(seen).toEqual(['WIDE-RST', 'WIDE-SYNFIN']);
  }, 30_000);
});
