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
import { join } from 'node:path';
import { NetworkManager } from '../../host/network/index.js';
import { findNetavark } from '../../host/network/netavark.js';
import { codeOfAsync } from '../support/error-code.js';
import { freePort } from '../support/registry.js';
import { repoRoot } from '../support/cli.js';
import { listArtifacts } from './artifacts.js';

const pid = process.pid;
// Unique per test process: other tests (and other checkouts) use netavark on this machine too.
const BRIDGE = `ctn${pid % 100000}b`;
const BASE = `10.${200 + (pid % 50)}`;
const ID = (name: string) => `ctnet-${pid}-${name}`;
const scope = { netnsPrefix: `ctnet-${pid}-`, bridgePrefix: BRIDGE, subnetBase: BASE };
// The managers that fail or crash keep their own state: their own bridges and subnets too.
const BRIDGE2 = `ctn${pid % 100000}x`;
const BASE2 = `10.${150 + (pid % 50)}`;
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
  const www = mkdtempSync(join(tmpdir(), 'ct-net-www-'));

  /** A process in the container's netns, with the container's resolv.conf, like runc would give it. */
  const inNetns = (id: string, resolvConf: string, argv: string[]) => {
    mkdirSync(`/etc/netns/${id}`, { recursive: true });
    writeFileSync(`/etc/netns/${id}/resolv.conf`, readFileSync(resolvConf));
    return argv.length ? execFileSync('ip', ['netns', 'exec', id, ...argv], { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }) : '';
  };
  const httpd = (id: string) => {
    const p = spawn('ip', ['netns', 'exec', id, 'busybox', 'httpd', '-f', '-p', '8080', '-h', www], { stdio: 'ignore' });
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
    for (const n of ['web', 'client', 'other', 'x1', 'x2', 'x3', 'x4', 'xhalf', 'xcrash']) rmSync(`/etc/netns/${ID(n)}`, { recursive: true, force: true });
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

  it('after kill -9 of the process in the middle of netavark setup, recovery leaves nothing behind', async () => {
    const real = await findNetavark();
    const dir = mkdtempSync(join(tmpdir(), 'ct-net-crash-'));
    const crashState = mkdtempSync(join(tmpdir(), 'ct-net-crash-state-'));
    const marker = join(dir, 'in-setup');
    // netavark that finishes its work, then hangs: the agent is killed while it "runs".
    writeFileSync(join(dir, 'netavark'), `#!/bin/sh\n"${real.netavark}" "$@"\nfor a in "$@"; do [ "$a" = setup ] && { echo $$ > "${marker}"; exec sleep 60; }; done\n`);
    chmodSync(join(dir, 'netavark'), 0o755);
    const cport = await freePort();
    const script = join(dir, 'attach.mjs');
    writeFileSync(script, `import { NetworkManager } from '${join(repoRoot, 'build/host/network/manager.js')}';
const net = new NetworkManager({ stateDir: ${JSON.stringify(crashState)}, subnetBase: '${BASE2}', bridgePrefix: '${BRIDGE2}', slots: 4,
  paths: { netavark: ${JSON.stringify(join(dir, 'netavark'))}, aardvark: ${JSON.stringify(real.aardvark)} } });
await net.attach({ containerId: '${ID('xcrash')}', environment: 'crash', app: 'crash', egress: 'none', ports: [{ host: ${cport}, container: 80, address: '127.0.0.1', protocol: 'tcp' }] });
`);
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
    const child = spawn(process.execPath, [script], { stdio: 'ignore' });
    for (let i = 0; i < 200 && !existsSync(marker); i++) await new Promise((r) => setTimeout(r, 50));
    expect(existsSync(marker)).toBe(true);
    // The setup is in place, the process that made it dies without a word.
    const during = listArtifacts(scope2);
    expect(during.netns).toEqual([ID('xcrash')]);
    expect(during.bridges).toEqual([`${BRIDGE2}0`]);
    // Ports are published (our DNAT rules, host/network/ports.ts) only once netavark's setup returned.
    expect(during.rules.some((r) => r.includes(`--dport ${cport}`))).toBe(false);
    expect(during.rules.some((r) => r.includes('cerro-torre egress'))).toBe(false); // killed before the egress rules
    child.kill('SIGKILL');
    process.kill(Number(readFileSync(marker, 'utf8')), 'SIGKILL');

    const restarted = new NetworkManager({ stateDir: crashState, subnetBase: BASE2, bridgePrefix: BRIDGE2, slots: 4 });
    try {
      expect(restarted.store.attachments().map((a) => [a.containerId, a.phase])).toEqual([[ID('xcrash'), 'setup']]);
      expect(await restarted.recover(() => 'gone')).toEqual([ID('xcrash')]);
      expect(listArtifacts(scope2)).toEqual({ netns: [], bridges: [], veths: [], rules: [] });
    } finally {
      restarted.close();
      rmSync(dir, { recursive: true, force: true });
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
