/**
 * A container's address is its own: no neighbour writes it, and no flow of an earlier holder
 * survives into it.
 *
 * Source-address spoofing between containers of one environment (netavark 1.4 bridge made by
 * host/network). Egress is enforced by rules keyed by the source address (host/network/egress.ts),
 * and a container with CAP_NET_RAW writes whatever frame it likes: `shut` (egress `none`) sent
 * UDP out with the address of `wide` (egress `any`), and it was masqueraded and left the host; it
 * could also claim `wide`'s address by ARP, or its MAC, and send IPv6 onto the bridge. Each
 * frame is written here with a packet socket from inside `shut`'s namespace (as a process of the
 * container would), and looked for where it would arrive: a sniffer in the "outside" namespace
 * (routed by the host, what `any` masquerades to) and one in `peer`'s namespace. Every frame that
 * must be dropped is followed by a control from the same namespace that must arrive.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager, findNetavark, type Egress } from '../../host/network/index.js';
import { stateScope } from '../../host/runtime/scope.js';
import { repoRoot } from '../support/cli.js';
import { claimSubnetBase } from '../support/subnets.js';
import { listArtifacts, removeGuardChains } from './artifacts.js';
import { makeOutside, removeOutside, sniffed } from './probes.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `cts${pid % 100000}g`;
const ID = (name: string) => `cts-${pid}-${name}`;
const scope = { netnsPrefix: `cts-${pid}-`, bridgePrefix: PREFIX, subnetBase: BASE };
const OUT_NS = ID('outside');
const OUTSIDE = { ns: OUT_NS, hostIf: `ctso${pid % 100000}`, host: `${BASE}.200.1`, addr: `${BASE}.200.2` };
const ENV = 'spoof';
const APPS: readonly [string, Egress][] = [['peer', 'none'], ['shut', 'none'], ['wide', 'any']];
const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * Writes Ethernet frames on eth0 with a packet socket (CAP_NET_RAW). Each argument is one frame:
 * `ip4:<dst mac>:<src mac>:<src ip>:<dst ip>:<tag>` (UDP to port 9999, payload CTMARK-<tag>),
 * `ip6:<dst mac>:<src mac>:<tag>` (UDP over IPv6 from fe80::1), `arp:<src mac>:<sender ip>:<target ip>`
 * (a broadcast who-has). MACs are written with `-` for `:`.
 */
const FRAMES = `import socket, struct, sys
def mac(m): return bytes.fromhex(m.replace('-', ''))
def csum(b):
    b += b'\\0' * (len(b) % 2)
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind(('eth0', 0))
for a in sys.argv[1:]:
    k, *f = a.split(':')
    if k == 'ip4':
        dst, src, sip, dip, tag = f
        data = ('CTMARK-%s' % tag).encode()
        udp = struct.pack('!HHHH', 40000, 9999, 8 + len(data), 0) + data
        h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(sip), socket.inet_aton(dip))
        h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
        s.send(mac(dst) + mac(src) + b'\\x08\\x00' + h + udp)
    elif k == 'ip6':
        dst, src, tag = f
        data = ('CTMARK-%s' % tag).encode()
        udp = struct.pack('!HHHH', 40000, 9999, 8 + len(data), 0) + data
        h = struct.pack('!IHBB16s16s', 6 << 28, len(udp), 17, 64, socket.inet_pton(socket.AF_INET6, 'fe80::1'), socket.inet_pton(socket.AF_INET6, 'fe80::2'))
        s.send(mac(dst) + mac(src) + b'\\x86\\xdd' + h + udp)
    elif k == 'arp':
        src, sip, tip = f
        arp = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 1, mac(src), socket.inet_aton(sip), b'\\0' * 6, socket.inet_aton(tip))
        s.send(b'\\xff' * 6 + mac(src) + b'\\x08\\x06' + arp)
`;

describe('a container writes only its own addresses onto the bridge', () => {
  let stateDir: string;
  let net: NetworkManager;
  let gateway: string;
  let bridge: string;
  const procs: ChildProcess[] = [];

  const nsOf = (id: string): string => (id === OUT_NS ? id : basename(net.attachment(id)!.netns));
  const addr = (app: string) => net.attachment(ID(app))!.address;
  const macOf = (app: string) => run('ip', 'netns', 'exec', nsOf(ID(app)), 'cat', '/sys/class/net/eth0/address').trim().replace(/:/g, '-');
  const gatewayMac = () => run('cat', `/sys/class/net/${bridge}/address`).trim().replace(/:/g, '-');
  const send = (app: string, ...frames: string[]) => run('ip', 'netns', 'exec', nsOf(ID(app)), 'python3', '-c', FRAMES, ...frames);

  /** What `shut` got through, with `wide`'s and its own controls: only the controls may arrive. */
  const spoofs = async (): Promise<{ outside: string[]; peer: string[]; arp: string }> => {
    const outside = await sniffed(OUT_NS, 'WIDEOUT', () => {
      // `wide`'s address on a datagram from `shut`, to the gateway's MAC: routed out as `wide`'s.
      send('shut', `ip4:${gatewayMac()}:${macOf('shut')}:${addr('wide')}:${OUTSIDE.addr}:SHUTASWIDE`);
      // The control: `wide` itself, whose egress is `any`.
      send('wide', `ip4:${gatewayMac()}:${macOf('wide')}:${addr('wide')}:${OUTSIDE.addr}:WIDEOUT`);
    });
    const peer = await sniffed(nsOf(ID('peer')), 'SHUTOWN', () => send('shut',
      `ip4:${macOf('peer')}:${macOf('shut')}:${addr('wide')}:${addr('peer')}:SHUTASWIDE`,
      // An address of the subnet no container has (the egress rules give it `none`'s, but still).
      `ip4:${macOf('peer')}:${macOf('shut')}:${gateway.replace(/\.1$/, '.250')}:${addr('peer')}:SHUTASNONE`,
      // Its own address with `wide`'s MAC: the bridge would learn that MAC on `shut`'s port.
      `ip4:${macOf('peer')}:${macOf('wide')}:${addr('shut')}:${addr('peer')}:SHUTMAC`,
      `ip6:${macOf('peer')}:${macOf('shut')}:SHUTIPV6`,
      // The control: its own addresses.
      `ip4:${macOf('peer')}:${macOf('shut')}:${addr('shut')}:${addr('peer')}:SHUTOWN`,
    ));
    // ARP: a who-has from `shut` saying it is `wide`; `peer` learns the sender of a request for its
    // own address. The control, its own who-has, must be learnt.
    run('ip', 'netns', 'exec', nsOf(ID('peer')), 'ip', 'neigh', 'flush', 'all');
    send('shut', `arp:${macOf('shut')}:${addr('wide')}:${addr('peer')}`, `arp:${macOf('shut')}:${addr('shut')}:${addr('peer')}`);
    await new Promise((r) => setTimeout(r, 300));
    const neigh = run('ip', 'netns', 'exec', nsOf(ID('peer')), 'ip', 'neigh', 'show').toLowerCase();
    const learnt = (a: string) => new RegExp(`^${a.replace(/\./g, '\\.')} .*lladdr ${macOf('shut').replace(/-/g, ':')}`, 'm').test(neigh);
    return { outside, peer, arp: `wide: ${learnt(addr('wide'))}, own: ${learnt(addr('shut'))}` };
  };

  const NONE_THROUGH = { outside: ['WIDEOUT'], peer: ['SHUTOWN'], arp: 'wide: false, own: true' };

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    await findNetavark();
    // The agent of the refusal test runs the transpiled code.
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    stateDir = mkdtempSync(join(tmpdir(), 'ct-spoof-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    for (const [app, egress] of APPS) await net.attach({ containerId: ID(app), environment: ENV, app, egress, ports: [] });
    ({ gateway, bridge } = net.bridgeOf(net.store.network(ENV)!));
    makeOutside(OUTSIDE);
  }, 60_000);

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    removeOutside(OUTSIDE);
    // Chains of this state directory left (the recover test's orphan, when recover() failed to
    // remove it) fail the file, and go, so that no later run meets them.
    const left = stateDir ? removeGuardChains(stateScope(stateDir)) : [];
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(left).toEqual([]);
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  /** The bridge-family filter table's lines of this test's containers (their chains name the state directory's scope). */
  const guardLines = () => run('ebtables-save').split('\n').filter((l) => l.includes(`ct-as-${stateScope(stateDir)}-`));

  it('drops a frame from a container with another\'s address (IPv4, ARP), MAC or IPv6, and lets its own through', async () => {
    expect(await spoofs()).toEqual(NONE_THROUGH);
  }, 60_000);

  it('writes the guards again at recover() when they went (an earlier agent had none), and removes a chain of a container that is not up', async () => {
    const before = guardLines();
    // One chain and two jumps per container.
    expect(before.filter((l) => l.startsWith(':'))).toHaveLength(APPS.length);
    expect(before.filter((l) => /^-A (INPUT|FORWARD) /.test(l))).toHaveLength(2 * APPS.length);
    for (const l of before.filter((x) => /^-A (INPUT|FORWARD) /.test(x))) run('sh', '-c', `ebtables ${l.replace(/^-A/, '-D')}`);
    // Without them, the hole: `shut` is `wide` to the outside.
    expect((await spoofs()).outside).toEqual(['SHUTASWIDE', 'WIDEOUT']);
    // A chain of this state directory that no container up has (a crash between teardown and its removal).
    const orphan = `ct-as-${stateScope(stateDir)}-00000000`;
    run('ebtables', '-N', orphan, '-P', 'RETURN');
    run('ebtables', '-I', 'FORWARD', '1', '-i', 'ctsgone0', '-j', orphan);
    const next = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    try {
      expect(await next.recover(() => 'running')).toEqual([]);
    } finally {
      next.close();
    }
    expect(guardLines().sort()).toEqual([...before].sort());
    expect(await spoofs()).toEqual(NONE_THROUGH);
  }, 90_000);

  it('refuses to start a container whose guard cannot be written (HOST_TOOL_MISSING without ebtables-restore), leaving nothing of it', async () => {
    // Every tool of the host but ebtables-restore: a PATH of links to /usr/sbin's, then /usr/bin's,
    // for an agent of its own (a process: PATH is read from the process's environment).
    const bin = mkdtempSync(join(tmpdir(), 'ct-spoof-path-'));
    try {
      for (const f of readdirSync('/usr/sbin')) if (f !== 'ebtables-restore') symlinkSync(join('/usr/sbin', f), join(bin, f));
      const agent = `import { NetworkManager } from ${JSON.stringify(join(repoRoot, 'build/host/network/index.js'))};
        const net = new NetworkManager({ stateDir: ${JSON.stringify(stateDir)}, subnetBase: '${BASE}', bridgePrefix: '${PREFIX}', slots: 2 });
        try { await net.attach({ containerId: '${ID('late')}', environment: '${ENV}', app: 'late', egress: 'any', ports: [] }); console.log('attached'); }
        catch (e) { console.log(e.code); } finally { net.close(); }`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', agent], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` } });
      expect(out.trim()).toBe('HOST_TOOL_MISSING');
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
    expect(net.attachment(ID('late'))).toBeUndefined();
    expect(listArtifacts(scope).netns.filter((n) => n.includes('late'))).toEqual([]);
    expect(guardLines().filter((l) => l.startsWith(':'))).toHaveLength(APPS.length);
  }, 60_000);

  /**
   * From inside a namespace: a UDP datagram from port 5555 to the outside's echo (port 9999),
   * `echoed` when the answer came within 1.5 s, else `silent`.
   */
  const udpFrom = (app: string) => run('ip', 'netns', 'exec', nsOf(ID(app)), 'python3', '-c', `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', 5555)); s.settimeout(1.5)
s.sendto(b'flow', ('${OUTSIDE.addr}', 9999))
try: s.recv(100); print('echoed')
except socket.timeout: print('silent')`).trim();

  it('drops the flows of a container that leaves: the next one on its address (egress `none`) cannot go on with one its predecessor (`any`) opened', async () => {
    // The outside's UDP echo on port 9999.
    const echo = spawn('ip', ['netns', 'exec', OUT_NS, 'python3', '-c', `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 9999))
while True: d, a = s.recvfrom(100); s.sendto(d, a)`], { stdio: 'ignore' });
    procs.push(echo);
    let first = 'silent';
    for (let i = 0; i < 10 && first !== 'echoed'; i++) first = udpFrom('wide');
    // `any`: the flow is opened, and answered (conntrack: ESTABLISHED, for 120 s or more).
    expect(first).toBe('echoed');
    const wide = addr('wide');
    await net.detach(ID('wide'));
    await net.attach({ containerId: ID('late'), environment: ENV, app: 'late', egress: 'none', ports: [] });
    expect(addr('late')).toBe(wide);
    // The same ports from the same address: with the old entry, ESTABLISHED, past the DROP.
    expect(udpFrom('late')).toBe('silent');
    await net.detach(ID('late'));
    // The control: an `any` container on the address reaches the echo.
    await net.attach({ containerId: ID('wide'), environment: ENV, app: 'wide', egress: 'any', ports: [] });
    expect(addr('wide')).toBe(wide);
    expect(udpFrom('wide')).toBe('echoed');
    echo.kill('SIGKILL');
  }, 60_000);

  it('removes a container\'s guard when it is detached, and a new container on its address gets its own', async () => {
    const wide = addr('wide');
    await net.detach(ID('wide'));
    expect(guardLines().filter((l) => l.startsWith(':'))).toHaveLength(APPS.length - 1);
    await net.attach({ containerId: ID('wide2'), environment: ENV, app: 'wide2', egress: 'any', ports: [] });
    expect(net.attachment(ID('wide2'))!.address).toBe(wide);
    expect(guardLines().filter((l) => l.startsWith(':'))).toHaveLength(APPS.length);
    const outside = await sniffed(OUT_NS, 'WIDEOUT', () => {
      send('shut', `ip4:${gatewayMac()}:${macOf('shut')}:${wide}:${OUTSIDE.addr}:SHUTASWIDE`);
      send('wide2', `ip4:${gatewayMac()}:${macOf('wide2')}:${wide}:${OUTSIDE.addr}:WIDEOUT`);
    });
    expect(outside).toEqual(['WIDEOUT']);
  }, 60_000);
});
