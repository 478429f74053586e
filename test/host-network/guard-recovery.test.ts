/**
 * What recover() (agent start, every inventory) and the teardown paths do with the anti-spoofing
 * guards and conntrack when a container with CAP_NET_ADMIN works against them (host/network/
 * anti-spoofing.ts, manager.ts): it changes its MAC or fakes its eth0 (the guard keeps what was
 * recorded before it ran), deletes its eth0 (its guard's jumps go, the agent goes on, an alert is
 * raised), and a datagram to a published port while it is detached (no flow DNATed to the freed
 * address survives into the next container). Each case was found by a hostile review.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager, findNetavark, type Egress } from '../../host/network/index.js';
import { stateScope } from '../../host/runtime/scope.js';
import { repoRoot } from '../support/cli.js';
import { claimSubnetBase } from '../support/subnets.js';
import { listArtifacts, removeGuardChains } from './artifacts.js';
import { makeOutside, removeOutside, sendFrames, sniffed } from './probes.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ctg${pid % 100000}g`;
const ID = (name: string) => `ctg-${pid}-${name}`;
const scope = { netnsPrefix: `ctg-${pid}-`, bridgePrefix: PREFIX, subnetBase: BASE };
const OUT_NS = ID('outside');
const NESTED = ID('nested');
const OUTSIDE = { ns: OUT_NS, hostIf: `ctgo${pid % 100000}`, host: `${BASE}.200.1`, addr: `${BASE}.200.2` };
const ENV = 'guards';
const APPS: readonly [string, Egress][] = [['peer', 'none'], ['shut', 'none'], ['wide', 'any']];
const run = (cmd: string, ...args: string[]) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const jump = (l: string) => /^-A (INPUT|FORWARD) /.test(l);

describe('recover() keeps each guard to what was recorded before the container ran', () => {
  let stateDir: string;
  let net: NetworkManager;
  let bridge: string;
  const ns = (app: string) => basename(net.attachment(ID(app))!.netns);
  const addr = (app: string) => net.attachment(ID(app))!.address;
  const macOf = (app: string, dev = 'eth0') => run('ip', 'netns', 'exec', ns(app), 'cat', `/sys/class/net/${dev}/address`).trim();
  const dashed = (m: string) => m.replace(/:/g, '-');
  const gatewayMac = () => dashed(run('cat', `/sys/class/net/${bridge}/address`).trim());
  const send = (app: string, dev: string, ...frames: string[]) => sendFrames(ns(app), dev, ...frames);
  const guardLines = () => run('ebtables-save').split('\n').filter((l) => l.includes(`ct-as-${stateScope(stateDir)}-`));
  /** The host-side veth of the app's eth0, as it is now. */
  const portOf = (app: string) => {
    const peer = JSON.parse(run('ip', '-j', '-n', ns(app), 'link', 'show', 'dev', 'eth0'))[0].link_index as number;
    return (JSON.parse(run('ip', '-j', 'link', 'show', 'master', bridge)) as { ifindex: number; ifname: string }[]).find((l) => l.ifindex === peer)!.ifname;
  };
  /** recover() of a fresh manager: an agent restarted (or upgraded) on the state directory. */
  const restart = async (alerts: [string, string][] = [], times = 1): Promise<string[]> => {
    const next = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    next.onAlert((id, code) => alerts.push([id, code]));
    const results: string[] = [];
    try {
      for (let i = 0; i < times; i++) results.push(await next.recover(() => 'running').then(() => 'ok', (e: { code?: string }) => e.code ?? 'error'));
    } finally {
      next.close();
    }
    return results;
  };

  beforeAll(async () => {
    await findNetavark();
    stateDir = mkdtempSync(join(tmpdir(), 'ct-guardrec-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 2 });
    for (const [app, egress] of APPS) await net.attach({ containerId: ID(app), environment: ENV, app, egress, ports: [] });
    bridge = net.bridgeOf(net.store.network(ENV)!).bridge;
    makeOutside(OUTSIDE);
  }, 60_000);

  afterAll(async () => {
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    removeOutside(OUTSIDE);
    try { run('ip', 'netns', 'delete', NESTED); } catch { /* not made, or gone */ }
    const left = stateDir ? removeGuardChains(stateScope(stateDir)) : [];
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(left).toEqual([]);
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  it('a container that set its MAC to a neighbour\'s keeps the guard of its own MAC after an agent restart', async () => {
    const wideMac = macOf('wide');
    const own = macOf('shut');
    run('ip', '-n', ns('shut'), 'link', 'set', 'eth0', 'address', wideMac);
    try {
      expect(await restart()).toEqual(['ok']);
      const ipv4 = guardLines().filter((l) => l.includes(' -p IPv4 '));
      expect(ipv4.filter((l) => l.includes(`--ip-src ${addr('shut')} `))).toEqual([expect.stringContaining(` -s ${own} `)]);
      // With the neighbour's MAC, its frames are dropped; its control (the peer's own) arrives.
      const seen = await sniffed(ns('peer'), 'CTRL', () => {
        send('shut', 'eth0', `${dashed(macOf('peer'))}:${dashed(wideMac)}:${addr('shut')}:${addr('peer')}:SHUTASWIDEMAC`);
        send('wide', 'eth0', `${dashed(macOf('peer'))}:${dashed(wideMac)}:${addr('wide')}:${addr('peer')}:CTRL`);
      });
      expect(seen).toEqual(['CTRL']);
    } finally {
      run('ip', '-n', ns('shut'), 'link', 'set', 'eth0', 'address', own);
    }
  }, 60_000);

  it('a container that fakes eth0 (a veth whose peer has a neighbour\'s port\'s ifindex) keeps its guard on its own port after a restart', async () => {
    const peerIndex = JSON.parse(run('ip', '-j', '-n', ns('peer'), 'link', 'show', 'dev', 'eth0'))[0].link_index as number;
    const s = ns('shut');
    run('ip', '-n', s, 'link', 'set', 'eth0', 'down');
    run('ip', '-n', s, 'link', 'set', 'eth0', 'name', 'eth1');
    run('ip', '-n', s, 'link', 'set', 'eth1', 'up');
    run('ip', '-n', s, 'link', 'add', 'eth0', 'index', '50', 'type', 'veth', 'peer', 'name', 'fake', 'index', String(peerIndex));
    run('ip', 'netns', 'add', NESTED);
    run('ip', '-n', s, 'link', 'set', 'fake', 'netns', NESTED);
    // What an agent reading eth0 inside would believe: the neighbour's port is its peer.
    expect(JSON.parse(run('ip', '-j', '-n', s, 'link', 'show', 'dev', 'eth0'))[0].link_index).toBe(peerIndex);
    try {
      expect(await restart()).toEqual(['ok']);
      // `shut` writes `wide`'s address on its real veth: dropped; `wide`'s own datagram leaves.
      const out = await sniffed(OUT_NS, 'WIDEOUT', () => {
        send('shut', 'eth1', `${gatewayMac()}:${dashed(macOf('shut', 'eth1'))}:${addr('wide')}:${OUTSIDE.addr}:SHUTASWIDE`);
        send('wide', 'eth0', `${gatewayMac()}:${dashed(macOf('wide'))}:${addr('wide')}:${OUTSIDE.addr}:WIDEOUT`);
      });
      expect(out).toEqual(['WIDEOUT']);
      // The neighbour whose port the fake named is not cut off.
      const peerOwn = await sniffed(ns('wide'), 'PEEROWN', () => send('peer', 'eth0', `${dashed(macOf('wide'))}:${dashed(macOf('peer'))}:${addr('peer')}:${addr('wide')}:PEEROWN`));
      expect(peerOwn).toEqual(['PEEROWN']);
    } finally {
      run('ip', '-n', s, 'link', 'del', 'eth0');
      run('ip', 'netns', 'delete', NESTED);
      run('ip', '-n', s, 'link', 'set', 'eth1', 'down');
      run('ip', '-n', s, 'link', 'set', 'eth1', 'name', 'eth0');
      run('ip', '-n', s, 'link', 'set', 'eth0', 'up');
    }
  }, 60_000);

  it('a container that deletes its eth0 loses its guard\'s jumps (its veth name may be the next veth\'s), is reported once, and recover() goes on for everyone', async () => {
    const port = portOf('shut');
    const others = guardLines().filter((l) => !l.includes(guardChainOf('shut')));
    run('ip', '-n', ns('shut'), 'link', 'del', 'eth0');
    const alerts: [string, string][] = [];
    expect(await restart(alerts, 3)).toEqual(['ok', 'ok', 'ok']);
    expect(alerts).toEqual([[ID('shut'), 'NETWORK_GUARD_PORT_GONE']]);
    // No jump on the name is left, of this scope or any other, and the neighbours' guards are as they were.
    expect(run('ebtables-save').split('\n').filter((l) => jump(l) && l.split(' ').includes(port) && l.includes(' -j ct-as-'))).toEqual([]);
    expect(guardLines().filter((l) => !l.includes(guardChainOf('shut')))).toEqual(others);
    // A veth of that name on another bridge (Podman's, another agent's) is not filtered.
    const other = `ctgb${pid % 100000}`;
    run('ip', 'link', 'add', other, 'type', 'bridge');
    try {
      run('ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NESTED_MADE());
      run('ip', 'link', 'set', port, 'master', other);
      expect(run('ebtables-save').split('\n').filter((l) => jump(l) && l.split(' ').includes(port))).toEqual([]);
    } finally {
      try { run('ip', 'link', 'del', port); } catch { /* gone with the namespace */ }
      run('ip', 'link', 'del', other);
      run('ip', 'netns', 'delete', NESTED);
    }
    // The container is reattached (a restart): its guard is back.
    await net.detach(ID('shut'));
    await net.attach({ containerId: ID('shut'), environment: ENV, app: 'shut', egress: 'none', ports: [] });
    expect(guardLines().filter((l) => jump(l) && l.includes(guardChainOf('shut')))).toHaveLength(2);
  }, 60_000);

  const guardChainOf = (app: string) => {
    const chains = guardLines().filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]);
    const rules = guardLines();
    return chains.find((c) => rules.some((l) => l.startsWith(`-A ${c} `) && l.includes(`--ip-src ${addr(app)} `)))!;
  };
  const NESTED_MADE = () => {
    run('ip', 'netns', 'add', NESTED);
    return NESTED;
  };

  it('a datagram to a published UDP port while its container is detached leaves no flow the next container on the address (`none`) answers', async () => {
    const P = 20000 + (pid % 20000);
    await net.attach({ containerId: ID('pub'), environment: ENV, app: 'pub', egress: 'any', ports: [{ host: P, container: 7000, address: '0.0.0.0', protocol: 'udp' }] });
    const X = addr('pub');
    // The outside sends to the published port every 2 ms, through the detach.
    const blaster = spawn('ip', ['netns', 'exec', OUT_NS, 'python3', '-c', `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('0.0.0.0', 7777))
while True:
    s.sendto(b'x', ('${OUTSIDE.host}', ${P})); time.sleep(0.002)`], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 300));
      await net.detach(ID('pub'));
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      blaster.kill('SIGKILL');
    }
    await net.attach({ containerId: ID('late'), environment: ENV, app: 'late', egress: 'none', ports: [] });
    expect(addr('late')).toBe(X);
    const out = await sniffed(OUT_NS, 'LATEOUT', () => {
      run('ip', 'netns', 'exec', ns('late'), 'python3', '-c', `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('', 7000)); s.sendto(b'CTMARK-LATEOUT', ('${OUTSIDE.addr}', 7777))`);
    });
    await net.detach(ID('late'));
    expect(out).toEqual([]);
  }, 60_000);

  it('a start that fails while its guard is being written leaves no chain (the write lands before the teardown)', async () => {
    // Every tool of the host but conntrack (the start's flush fails at once, beside the guard's
    // write), and an ebtables-restore a second slow (a loaded host: the guard lands after the
    // teardown looked for it): a PATH of links to /usr/sbin's, for an agent of its own.
    const bin = mkdtempSync(join(tmpdir(), 'ct-guardrec-path-'));
    try {
      for (const f of readdirSync('/usr/sbin')) if (f !== 'conntrack' && f !== 'ebtables-restore') symlinkSync(join('/usr/sbin', f), join(bin, f));
      writeFileSync(join(bin, 'ebtables-restore'), '#!/bin/sh\nsleep 1\nexec /usr/sbin/ebtables-restore "$@"\n', { mode: 0o755 });
      const agent = `import { NetworkManager } from ${JSON.stringify(join(repoRoot, 'build/host/network/index.js'))};
        const net = new NetworkManager({ stateDir: ${JSON.stringify(stateDir)}, subnetBase: '${BASE}', bridgePrefix: '${PREFIX}', slots: 2 });
        const codes = [];
        for (let i = 0; i < 3; i++) codes.push(await net.attach({ containerId: '${ID('nocon')}-' + i, environment: '${ENV}', app: 'nocon' + i, egress: 'any', ports: [] }).then(() => 'attached', (e) => e.code));
        // A write still under way lands now (an agent goes on; close() would fail it).
        await new Promise((r) => setTimeout(r, 2500));
        net.close();
        console.log(codes.join(' '));`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', agent], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` } });
      expect(out.trim()).toBe(Array(3).fill('HOST_TOOL_MISSING').join(' '));
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
    // The containers up have a chain each, and nothing else is left.
    expect(guardLines().filter((l) => l.startsWith(':'))).toHaveLength(APPS.length);
    expect(guardLines().filter(jump)).toHaveLength(2 * APPS.length);
  }, 60_000);
});
