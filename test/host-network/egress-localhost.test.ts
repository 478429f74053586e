/**
 * The host's loopback services from a container (CVE-2020-8558 in kube-proxy, the same shape).
 * A bridge with a port published on 127.0.0.1 (the default address) or 0.0.0.0 gets route_localnet
 * (ports.ts: the host's own clients of the port are answered through it), and with it the host
 * takes packets for 127.0.0.0/8 that arrive on the bridge as its own. A container that sends one
 * (CAP_NET_RAW is enough to write the frame; here the namespace is told to route 127.0.0.1 to the
 * gateway, as CAP_NET_ADMIN could) reached services the host keeps on 127.0.0.1 only, in every
 * egress mode but `none`: the host answered a TCP SYN with a SYN-ACK (which a raw socket reads),
 * and a UDP datagram (DNS on 127.0.0.53, a cache, an agent's local port) needs no answer at all,
 * so that is what is shown here. The host's own client of the published port must keep working
 * (its answers come back through the bridge to 127.0.0.1: they are not new connections).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createSocket, type Socket } from 'node:dgram';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager, findNetavark } from '../../host/network/index.js';
import { claimSubnetBase } from '../support/subnets.js';
import { listArtifacts } from './artifacts.js';

const pid = process.pid;
const BASE = claimSubnetBase();
const PREFIX = `ctl${pid % 100000}g`;
const ID = (name: string) => `ctl-${pid}-${name}`;
const scope = { netnsPrefix: `ctl-${pid}-`, bridgePrefix: PREFIX, subnetBase: BASE };
const EGRESS = ['environment', 'any'] as const;

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** Sends one UDP datagram to 127.0.0.1:port from inside a namespace: `sent`, or the error. */
function sendFrom(ns: string, port: number, text: string): Promise<string> {
  const script = `const s=require('dgram').createSocket('udp4');s.send(${JSON.stringify(text)},${port},'127.0.0.1',(e)=>{console.log(e?e.code:'sent');s.close()})`;
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 }, (err, stdout) => resolve(err ? `failed: ${err.message}` : stdout.trim()));
  });
}

/** The host's own client of 127.0.0.1:port: the line it read, or the error code. */
function connectHost(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setTimeout(2000);
    s.setEncoding('utf8');
    s.on('data', (d: string) => (resolve(d.trim()), s.destroy()));
    s.on('timeout', () => (resolve('timeout'), s.destroy()));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

/** A port nothing listens on now. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe("the host's loopback from a container (route_localnet on its bridge)", () => {
  let stateDir: string;
  let net: NetworkManager;
  let secret: Socket;
  let secretPort: number;
  /** What the host-only service received, and from whom. */
  const received: string[] = [];
  const apps: ChildProcess[] = [];
  const ns: Partial<Record<(typeof EGRESS)[number], string>> = {};
  const published: Partial<Record<(typeof EGRESS)[number], number>> = {};

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    await findNetavark();
    // A service the host keeps to itself: on 127.0.0.1 only.
    secret = createSocket('udp4');
    secret.on('message', (m, from) => received.push(`${String(m)} from ${from.address}`));
    await new Promise<void>((r) => secret.bind(0, '127.0.0.1', r));
    secretPort = secret.address().port;
    stateDir = mkdtempSync(join(tmpdir(), 'ct-egress-lo-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 4 });
    for (const egress of EGRESS) {
      const id = ID(egress);
      published[egress] = await freePort();
      await net.attach({ containerId: id, environment: `lo-${egress}`, app: 'web', egress, ports: [{ host: published[egress]!, container: 8080, address: '127.0.0.1', protocol: 'tcp' }] });
      ns[egress] = basename(net.attachment(id)!.netns);
      const gateway = net.bridgeOf(net.store.network(`lo-${egress}`)!).gateway;
      // The app behind the published port.
      apps.push(spawn('ip', ['netns', 'exec', ns[egress]!, process.execPath, '-e', `require('net').createServer((s)=>{s.on('error',()=>{});s.end('app\\n')}).listen(8080)`], { stdio: 'ignore' }));
      // What the app does: 127.0.0.1 goes out of eth0 to the gateway instead of to its own lo.
      ip('netns', 'exec', ns[egress]!, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv4/conf/eth0/route_localnet');
      ip('-n', ns[egress]!, 'route', 'del', 'local', '127.0.0.1', 'dev', 'lo', 'table', 'local');
      ip('-n', ns[egress]!, 'route', 'del', 'local', '127.0.0.0/8', 'dev', 'lo', 'table', 'local');
      ip('-n', ns[egress]!, 'route', 'add', '127.0.0.1/32', 'via', gateway, 'dev', 'eth0', 'src', net.attachment(id)!.address);
    }
  }, 60_000);

  afterAll(async () => {
    secret?.close();
    for (const a of apps) a.kill('SIGKILL');
    for (const row of net?.store.attachments() ?? []) await net.detach(row.containerId);
    net?.close();
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
  }, 60_000);

  it("keeps the host's 127.0.0.1 services out of reach, while the host's own client reaches the published port", async () => {
    for (const egress of EGRESS) {
      // route_localnet is what the published port needs (and what makes the attack possible).
      expect(readFileSync(`/proc/sys/net/ipv4/conf/${net.bridgeOf(net.store.network(`lo-${egress}`)!).bridge}/route_localnet`, 'utf8').trim()).toBe('1');
    }
    const seen = await Promise.all(EGRESS.map(async (egress) => {
      let own = '';
      for (let i = 0; i < 30 && own !== 'app'; i++) {
        own = await connectHost(published[egress]!);
        if (own !== 'app') await new Promise((r) => setTimeout(r, 100));
      }
      return [egress, own, await sendFrom(ns[egress]!, secretPort, `from ${egress}`)];
    }));
    // Sent (the namespace routes it to the gateway), and not received (the host drops it).
    expect(seen).toEqual(EGRESS.map((egress) => [egress, 'app', 'sent']));
    await new Promise((r) => setTimeout(r, 1000));
    expect(received).toEqual([]);
  }, 30_000);

  it("gives networks an earlier agent set up (without the loopback DROP) this agent's rules at recover()", async () => {
    const mangle = () => execFileSync('iptables-save', ['-t', 'mangle'], { encoding: 'utf8' }).split('\n');
    const ours = (l: string) => l.startsWith('-A INPUT ') && l.includes('127.0.0.0/8') && l.includes(`cerro-torre egress ${PREFIX}`);
    // What an agent before the change left: the rules of each egress but the loopback DROP.
    for (const l of mangle().filter(ours)) execFileSync('sh', ['-c', `iptables -t mangle ${l.replace(/^-A/, '-D')}`]);
    expect(mangle().filter(ours)).toEqual([]);
    received.length = 0;
    expect(await sendFrom(ns.any!, secretPort, 'before recover')).toBe('sent');
    for (let i = 0; i < 20 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(received).toEqual([expect.stringMatching(/^before recover from /)]);
    // The upgraded agent: a new manager on the same state, its first inventory (every container running).
    const next = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: PREFIX, slots: 4 });
    try {
      expect(await next.recover(() => 'running')).toEqual([]);
    } finally {
      next.close();
    }
    expect(mangle().filter(ours)).toHaveLength(EGRESS.length);
    received.length = 0;
    expect(await sendFrom(ns.any!, secretPort, 'after recover')).toBe('sent');
    await new Promise((r) => setTimeout(r, 1000));
    expect(received).toEqual([]);
  }, 30_000);
});
