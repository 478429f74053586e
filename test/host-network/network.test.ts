/**
 * host/network with the real netavark 1.4 and aardvark-dns: one bridge per environment, static
 * addresses from the host's SQLite state, names through aardvark-dns, published ports answering
 * on the host, isolation between environments, and everything torn down again (listed with ip and
 * iptables-save) after a detach, a failing netavark, and a `kill -9` in the middle of a setup.
 * Processes stand in for containers here (`ip netns exec`); test/host-network/deploy.test.ts runs
 * runc containers through the deploy server.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { NetworkManager } from '../../host/network/index.js';
import { findNetavark } from '../../host/network/netavark.js';
import { codeOfAsync } from '../support/error-code.js';
import { freePort } from '../support/registry.js';
import { repoRoot } from '../support/cli.js';
import { listArtifacts } from './artifacts.js';
import { claimSubnetBase } from '../support/subnets.js';

const pid = process.pid;
// Unique per test process: other tests (and other checkouts) use netavark on this machine too.
const BRIDGE = `ctn${pid % 100000}b`;
const BASE = claimSubnetBase();
const ID = (name: string) => `ctnet-${pid}-${name}`;
const scope = { netnsPrefix: `ctnet-${pid}-`, bridgePrefix: BRIDGE, subnetBase: BASE };
// The managers that fail or crash keep their own state: their own bridges and subnets too.
const BRIDGE2 = `ctn${pid % 100000}x`;
const BASE2 = claimSubnetBase();
const scope2 = { netnsPrefix: `ctnet-${pid}-x`, bridgePrefix: BRIDGE2, subnetBase: BASE2 };

async function httpStatus(url: string): Promise<number | string> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(3000) })).status;
  } catch (e) {
    return (e as Error).message;
  }
}

describe('host/network (netavark bridge per environment)', () => {
  let stateDir: string;
  let net: NetworkManager;
  const procs: ChildProcess[] = [];
  const etcNetns: string[] = [];
  const www = mkdtempSync(join(tmpdir(), 'ct-net-www-'));

  /** A process in the container's netns, with the container's resolv.conf, like runc would give it. */
  /** The container's namespace name (it carries the state directory's scope). */
  const nsOf = (id: string, m: NetworkManager = net) => basename(m.netnsPath(id));
  const inNetns = (id: string, resolvConf: string, argv: string[], m: NetworkManager = net) => {
    mkdirSync(`/etc/netns/${nsOf(id, m)}`, { recursive: true });
    writeFileSync(`/etc/netns/${nsOf(id, m)}/resolv.conf`, readFileSync(resolvConf));
    return argv.length ? execFileSync('ip', ['netns', 'exec', nsOf(id, m), ...argv], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }) : '';
  };
  const httpd = (id: string, m: NetworkManager = net) => {
    const p = spawn('ip', ['netns', 'exec', nsOf(id, m), 'busybox', 'httpd', '-f', '-p', '8080', '-h', www], { stdio: 'ignore' });
    procs.push(p);
    return p;
  };

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    await findNetavark(); // fails loudly when netavark or aardvark-dns is missing
    writeFileSync(join(www, 'index.html'), 'hello from web\n');
    stateDir = mkdtempSync(join(tmpdir(), 'ct-net-state-'));
    net = new NetworkManager({ stateDir, subnetBase: BASE, bridgePrefix: BRIDGE, slots: 4, addresses: 3 });
  });

  afterAll(async () => {
    for (const p of procs) p.kill('SIGKILL');
    for (const row of net.store.attachments()) await net.detach(row.containerId);
    net.close();
    for (const n of ['web', 'client', 'other', 'x1', 'x2', 'x3', 'x4', 'xhalf', 'xcrash']) rmSync(`/etc/netns/${nsOf(ID(n))}`, { recursive: true, force: true });
    for (const d of etcNetns) rmSync(d, { recursive: true, force: true });
    rmSync(www, { recursive: true, force: true });
  });

  let port: number;
  let web: { address: string; resolvConf: string };

  it('publishes a port on 127.0.0.1, names apps of one environment and isolates the others', async () => {
    port = await freePort();
    web = await net.attach({ containerId: ID('web'), environment: 'prod', app: 'web', egress: 'any', ports: [{ host: port, container: 8080, address: '127.0.0.1', protocol: 'tcp' }] });
    expect(web.address).toBe(`${BASE}.0.2`);
    expect(readFileSync(web.resolvConf, 'utf8')).toContain(`nameserver ${BASE}.0.1`);
    inNetns(ID('web'), web.resolvConf, []);
    httpd(ID('web'));
    let status: number | string = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = await httpStatus(`http://127.0.0.1:${port}/`);
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);

    const client = await net.attach({ containerId: ID('client'), environment: 'prod', app: 'client', egress: 'any', ports: [] });
    expect(client.address).toBe(`${BASE}.0.3`);
    expect(inNetns(ID('client'), client.resolvConf, ['timeout', '3', 'busybox', 'wget', '-q', '-O', '-', 'http://web:8080/'])).toBe('hello from web\n');

    const other = await net.attach({ containerId: ID('other'), environment: 'staging', app: 'other', egress: 'any', ports: [] });
    expect(other.address).toBe(`${BASE}.1.2`);
    // Another environment: its DNS does not know `web`, and the address itself is unreachable.
    expect(() => inNetns(ID('other'), other.resolvConf, ['timeout', '2', 'busybox', 'wget', '-q', '-O', '-', 'http://web:8080/'])).toThrow();
    expect(() => inNetns(ID('other'), other.resolvConf, ['timeout', '2', 'busybox', 'wget', '-q', '-O', '-', `http://${web.address}:8080/`])).toThrow();

    const seen = listArtifacts(scope);
    expect(seen.netns).toEqual([ID('client'), ID('other'), ID('web')].sort());
    expect(seen.bridges).toEqual([`${BRIDGE}0`, `${BRIDGE}1`]);
    expect(seen.veths).toHaveLength(3);
    expect(seen.rules.some((r) => r.includes(`--dport ${port}`))).toBe(true);
  });

  it('refuses a taken port, before setting anything up', async () => {
    const before = listArtifacts(scope);
    const code = await codeOfAsync(net.attach({ containerId: ID('x1'), environment: 'prod', app: 'x1', egress: 'any', ports: [{ host: port, container: 8080, address: '127.0.0.1', protocol: 'tcp' }] }));
    expect(code).toBe('PORT_IN_USE');
    // A wildcard address overlaps every address.
    expect(await codeOfAsync(net.attach({ containerId: ID('x1'), environment: 'prod', app: 'x1', egress: 'any', ports: [{ host: port, container: 8080, address: '0.0.0.0', protocol: 'tcp' }] }))).toBe('PORT_IN_USE');
    // A process of the host that listens on the port.
    const srv = createServer();
    const busy = await freePort();
    await new Promise<void>((r) => srv.listen(busy, '127.0.0.1', r));
    try {
      expect(await codeOfAsync(net.attach({ containerId: ID('x1'), environment: 'prod', app: 'x1', egress: 'any', ports: [{ host: busy, container: 8080, address: '127.0.0.1', protocol: 'tcp' }] }))).toBe('PORT_IN_USE');
    } finally {
      srv.close();
    }
    expect(net.attachment(ID('x1'))).toBeUndefined();
    expect(listArtifacts(scope)).toEqual(before);
  });

  it('reports an exhausted address pool and keeps nothing of the refused attachment', async () => {
    await net.attach({ containerId: ID('x2'), environment: 'prod', app: 'x2', egress: 'any', ports: [] }); // the third and last address
    const before = listArtifacts(scope);
    expect(await codeOfAsync(net.attach({ containerId: ID('x3'), environment: 'prod', app: 'x3', egress: 'any', ports: [] }))).toBe('ADDRESS_POOL_EXHAUSTED');
    expect(listArtifacts(scope)).toEqual(before);
    await net.detach(ID('x2'));
    const again = await net.attach({ containerId: ID('x3'), environment: 'prod', app: 'x3', egress: 'any', ports: [] });
    expect(again.address).toBe(`${BASE}.0.4`);
    await net.detach(ID('x3'));
  });

  it('tears down what a netavark that fails half-way set up', async () => {
    const real = await findNetavark();
    const dir = mkdtempSync(join(tmpdir(), 'ct-net-fake-'));
    // Sets the network up for real, then fails: the manager must undo it.
    writeFileSync(join(dir, 'netavark'), `#!/bin/sh\n"${real.netavark}" "$@"\nrc=$?\nfor a in "$@"; do [ "$a" = setup ] && { echo '{"error":"injected failure after setup"}'; exit 1; }; done\nexit $rc\n`);
    chmodSync(join(dir, 'netavark'), 0o755);
    const half = new NetworkManager({ stateDir: mkdtempSync(join(tmpdir(), 'ct-net-half-')), subnetBase: BASE2, bridgePrefix: BRIDGE2, slots: 4, paths: { netavark: join(dir, 'netavark'), aardvark: real.aardvark } });
    const hport = await freePort();
    try {
      const err = await half.attach({ containerId: ID('xhalf'), environment: 'half', app: 'half', egress: 'environment', ports: [{ host: hport, container: 80, address: '127.0.0.1', protocol: 'tcp' }] }).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('NETWORK_SETUP_FAILED');
      expect((err as Error).message).toContain('injected failure after setup');
      expect(listArtifacts(scope2)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
      expect(listArtifacts(scope).rules.filter((r) => r.includes(`--dport ${hport}`))).toEqual([]);
      expect(half.store.attachments()).toEqual([]);
    } finally {
      half.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /**
   * Runs `calls` (statements on `net`, a manager of `stateDir` on BASE2/BRIDGE2) in a process whose
   * netavark finishes its setup and then hangs, and kills that process and its netavark with
   * SIGKILL once netavark is in that state: an agent killed in the middle of a setup.
   */
  async function killedInSetup<T>(stateDir: string, calls: string, whileHung: () => T): Promise<T> {
    const real = await findNetavark();
    const dir = mkdtempSync(join(tmpdir(), 'ct-net-crash-'));
    const marker = join(dir, 'in-setup');
    // netavark that finishes its work, then hangs when asked to (the marker's directory exists): the agent is killed while it "runs".
    writeFileSync(join(dir, 'netavark'), `#!/bin/sh\n"${real.netavark}" "$@"\nrc=$?\nfor a in "$@"; do [ "$a" = setup ] && [ -d "${dir}/hang" ] && { echo $$ > "${marker}"; exec sleep 60; }; done\nexit $rc\n`);
    chmodSync(join(dir, 'netavark'), 0o755);
    const script = join(dir, 'calls.mjs');
    writeFileSync(script, `import { mkdirSync } from 'node:fs';
import { NetworkManager } from '${join(repoRoot, 'build/host/network/manager.js')}';
const net = new NetworkManager({ stateDir: ${JSON.stringify(stateDir)}, subnetBase: '${BASE2}', bridgePrefix: '${BRIDGE2}', slots: 4,
  paths: { netavark: ${JSON.stringify(join(dir, 'netavark'))}, aardvark: ${JSON.stringify(real.aardvark)} } });
const hang = () => mkdirSync(${JSON.stringify(join(dir, 'hang'))});
${calls}
`);
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const child = spawn(process.execPath, [script], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 200 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 50));
      expect(existsSync(marker)).toBe(true);
      return whileHung();
    } finally {
      child.kill('SIGKILL');
      if (existsSync(marker)) process.kill(Number(readFileSync(marker, 'utf8')), 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('after kill -9 of the process in the middle of netavark setup, recovery leaves nothing behind', async () => {
    const crashState = mkdtempSync(join(tmpdir(), 'ct-net-crash-state-'));
    const cport = await freePort();
    // The setup is in place (looked at while netavark hangs), the process that made it dies without a word.
    const during = await killedInSetup(crashState, `hang();
await net.attach({ containerId: '${ID('xcrash')}', environment: 'crash', app: 'crash', egress: 'none', ports: [{ host: ${cport}, container: 80, address: '127.0.0.1', protocol: 'tcp' }] });`, () => listArtifacts(scope2));
    expect(during.netns).toEqual([ID('xcrash')]);
    expect(during.bridges).toEqual([`${BRIDGE2}0`]);
    // Ports are published (our DNAT rules, host/network/ports.ts) only once netavark's setup returned.
    expect(during.rules.some((r) => r.includes(`--dport ${cport}`))).toBe(false);
    expect(during.rules.some((r) => r.includes('cerro-torre egress'))).toBe(false); // killed before the egress rules

    const restarted = new NetworkManager({ stateDir: crashState, subnetBase: BASE2, bridgePrefix: BRIDGE2, slots: 4 });
    try {
      expect(restarted.store.attachments().map((a) => [a.containerId, a.phase])).toEqual([[ID('xcrash'), 'setup']]);
      expect(await restarted.recover(() => 'gone')).toEqual([ID('xcrash')]);
      expect(listArtifacts(scope2)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    } finally {
      restarted.close();
    }
  });

  it('after kill -9 in the middle of resuming a stopped container\'s network, recovery tears down what the resume made and keeps its address', async () => {
    const state = mkdtempSync(join(tmpdir(), 'ct-net-resume-state-'));
    const rport = await freePort();
    const id = ID('xresume');
    await killedInSetup(state, `await net.attach({ containerId: '${id}', environment: 'resume', app: 'resume', egress: 'environment', ports: [{ host: ${rport}, container: 80, address: '127.0.0.1', protocol: 'tcp' }] });
await net.suspend('${id}');
hang();
await net.resume('${id}');`, () => undefined);
    const restarted = new NetworkManager({ stateDir: state, subnetBase: BASE2, bridgePrefix: BRIDGE2, slots: 4 });
    try {
      // The row still says the container's network is down; its namespace, veth and bridge are up.
      const row = restarted.store.attachment(id)!;
      expect([row.phase, existsSync(row.netns)]).toEqual(['down', true]);
      expect(listArtifacts(scope2)).toMatchObject({ netns: [id], bridges: [`${BRIDGE2}0`] });
      expect(await restarted.recover(() => 'stopped')).toEqual([id]);
      expect(listArtifacts(scope2)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
      // Suspended as before, its address and port kept: the container's next start has them back.
      expect(restarted.store.attachment(id)).toMatchObject({ phase: 'down', address: row.address, ports: row.ports });
      await restarted.resume(id);
      expect([restarted.store.attachment(id)?.phase, existsSync(row.netns)]).toEqual(['up', true]);
      expect(listArtifacts(scope2).rules.some((r) => r.includes(`--dport ${rport}`))).toBe(true);
      await restarted.detach(id);
      expect(listArtifacts(scope2)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    } finally {
      restarted.close();
    }
  });

  it('gives a container of the same id in another state directory its own namespace: one\'s teardown leaves the other\'s network', async () => {
    const twinState = mkdtempSync(join(tmpdir(), 'ct-net-twin-'));
    const twin = new NetworkManager({ stateDir: twinState, subnetBase: BASE2, bridgePrefix: BRIDGE2, slots: 4 });
    const id = ID('twin');
    const tport = await freePort();
    try {
      const ours = await net.attach({ containerId: id, environment: 'twin', app: 'twin', egress: 'any', ports: [{ host: tport, container: 8080, address: '127.0.0.1', protocol: 'tcp' }] });
      etcNetns.push(`/etc/netns/${nsOf(id)}`);
      inNetns(id, ours.resolvConf, []);
      httpd(id);
      const theirs = await twin.attach({ containerId: id, environment: 'twin', app: 'twin', egress: 'any', ports: [] });
      expect(theirs.netnsPath).not.toBe(ours.netnsPath);
      expect([existsSync(ours.netnsPath), existsSync(theirs.netnsPath)]).toEqual([true, true]);
      // Each namespace holds its own container's address.
      const addressIn = (path: string) => execFileSync('ip', ['-n', basename(path), '-4', '-o', 'addr', 'show', 'eth0'], { encoding: 'utf8' });
      expect(addressIn(ours.netnsPath)).toContain(`${ours.address}/24`);
      expect(addressIn(theirs.netnsPath)).toContain(`${theirs.address}/24`);

      await twin.detach(id);
      expect([existsSync(ours.netnsPath), existsSync(theirs.netnsPath)]).toEqual([true, false]);
      expect(addressIn(ours.netnsPath)).toContain(`${ours.address}/24`);
      let status: number | string = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = await httpStatus(`http://127.0.0.1:${tport}/`);
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(status).toBe(200);
    } finally {
      await twin.detach(id);
      twin.close();
      for (const p of procs.splice(-1)) p.kill('SIGKILL');
      await net.detach(id);
    }
  });

  it('detaching the last containers removes netns, veths, bridges and rules', async () => {
    for (const p of procs.splice(0)) p.kill('SIGKILL');
    for (const id of [ID('web'), ID('client'), ID('other')]) await net.detach(id);
    expect(listArtifacts(scope)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    expect(net.store.networks()).toEqual([]);
    expect(await httpStatus(`http://127.0.0.1:${port}/`)).not.toBe(200);
  });
});
