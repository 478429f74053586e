/**
 * Bridge networking refused with a clear code, nothing left behind:
 *  - a rootless agent (a real process running as nobody) asking for a bridge gets
 *    NETWORK_ROOTLESS_UNSUPPORTED, and so does an agent without a NetworkManager (how `ct host run`
 *    starts when not root), before anything is unpacked;
 *  - netavark or aardvark-dns missing is HOST_TOOL_MISSING naming the tool; an attach with a
 *    netavark that vanished leaves no netns and no allocation.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetworkManager, findNetavark } from '../../host/network/index.js';
import { checkNetworkAsk } from '../../host/agent/network-hook.js';
import { codeOf, codeOfAsync } from '../support/error-code.js';
import { repoRoot } from '../support/cli.js';
import { claimSubnetBase } from '../support/subnets.js';

const pid = process.pid;
const ID = `ctref-${pid}-a`;

describe('bridge networking refusals', () => {
  let dir: string;

  beforeAll(() => {
    if (process.getuid?.() !== 0) throw new Error('host/network tests run as root (CI does)');
    dir = mkdtempSync(join(tmpdir(), 'ct-net-refuse-'));
    chmodSync(dir, 0o755);
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a bridge to a process that is not root: NETWORK_ROOTLESS_UNSUPPORTED, nothing set up', () => {
    const state = join(dir, 'rootless');
    mkdirSync(state);
    chownSync(state, 65534, 65534);
    const script = `import { NetworkManager } from ${JSON.stringify(join(repoRoot, 'build/host/network/manager.js'))};
const net = new NetworkManager({ stateDir: ${JSON.stringify(state)} });
try {
  await net.attach({ containerId: '${ID}', environment: 'e', app: 'a', egress: 'none', ports: [] });
  console.log('attached');
} catch (e) {
  console.log(JSON.stringify({ code: e.code, message: e.message, rows: net.store.attachments().length }));
}`;
    // uid/gid 65534 (nobody): the rootless agent of a real host.
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: dir, timeout: 30_000 });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim()) as { code: string; message: string; rows: number };
    expect(out).toMatchObject({ code: 'NETWORK_ROOTLESS_UNSUPPORTED', rows: 0 });
    expect(out.message).toContain('rootless');
    expect(existsSync(`/run/netns/${ID}`)).toBe(false);
  }, 40_000);

  it('refuses network = "bridge" on an agent without bridge networking, whatever the ports', () => {
    const grants = { network: { publish: [[{ ports: { from: 1024, to: 65535 } }]], egress: 'any' as const } };
    expect(codeOf(() => checkNetworkAsk({ network: 'bridge', ports: ['8080/tcp'] }, [], grants, undefined))).toBe('NETWORK_ROOTLESS_UNSUPPORTED');
    expect(codeOf(() => checkNetworkAsk({ network: 'bridge', ports: ['8080/tcp'] }, [{ host: 18080, container: 8080, address: '127.0.0.1', protocol: 'tcp' }], grants, undefined))).toBe('NETWORK_ROOTLESS_UNSUPPORTED');
    // network = "none" is what rootless apps run: allowed, and ports without a bridge are not.
    expect(codeOf(() => checkNetworkAsk({ network: 'none' }, [], grants, undefined))).toBeUndefined();
    expect(codeOf(() => checkNetworkAsk({ network: 'none' }, [{ host: 18080, container: 8080, address: '127.0.0.1', protocol: 'tcp' }], grants, undefined))).toBe('PORT_NOT_ALLOWED');
  });

  it('refuses a port published on an address this machine does not have (PORT_NOT_ALLOWED), for the agent as for ct run', () => {
    const own = Object.values(networkInterfaces()).flatMap((l) => l ?? []).find((a) => a.family === 'IPv4' && !a.internal);
    // The policy allows every address asked here: what refuses is the machine's own addresses.
    const addresses = ['192.0.2.1', '127.0.0.1', '0.0.0.0', ...(own ? [own.address] : [])];
    const grants = { network: { publish: [[{ ports: { from: 1024, to: 65535 }, addresses }]], egress: 'any' as const } };
    const net = new NetworkManager({ stateDir: join(dir, 'addresses') });
    try {
      const ask = (address: string) => codeOf(() => checkNetworkAsk({ network: 'bridge', ports: ['8080/tcp'] }, [{ host: 18080, container: 8080, address, protocol: 'tcp' }], grants, net));
      // TEST-NET-1: assigned nowhere.
      expect(ask('192.0.2.1')).toBe('PORT_NOT_ALLOWED');
      expect(ask('127.0.0.1')).toBeUndefined();
      expect(ask('0.0.0.0')).toBeUndefined();
      if (own) expect(ask(own.address)).toBeUndefined();
    } finally {
      net.close();
    }
  });

  it('names the missing tool (HOST_TOOL_MISSING) and leaves nothing when netavark is gone', async () => {
    const empty = mkdtempSync(join(dir, 'empty-'));
    const missing = await findNetavark([empty]).catch((e: { code?: string; message: string }) => e);
    expect((missing as { code?: string }).code).toBe('HOST_TOOL_MISSING');
    expect((missing as Error).message).toContain('netavark is not installed');
    const real = await findNetavark();
    const net = new NetworkManager({ stateDir: join(dir, 'gone'), subnetBase: claimSubnetBase(), bridgePrefix: `ctf${pid % 100000}`, paths: { netavark: join(empty, 'netavark'), aardvark: real.aardvark } });
    try {
      expect(await codeOfAsync(net.attach({ containerId: ID, environment: 'e', app: 'a', egress: 'none', ports: [] }))).toBe('HOST_TOOL_MISSING');
      expect(net.store.attachments()).toEqual([]);
      expect(net.store.networks()).toEqual([]);
      expect(existsSync(`/run/netns/${ID}`)).toBe(false);
    } finally {
      net.close();
    }
  });
});
