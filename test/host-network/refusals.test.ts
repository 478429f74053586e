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
import { checkPublishAddresses, publishAddressNote } from '../../host/network/publish-address.js';
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

  it('a port on an address this machine does not have: ct run refuses it (PORT_NOT_ALLOWED, naming it), the agent deploys it with a note; 127.0.0.0/8 is always here', () => {
    const own = Object.values(networkInterfaces()).flatMap((l) => l ?? []).filter((a) => a.family === 'IPv4');
    const external = own.find((a) => !a.internal);
    // Proven absent now: a TEST-NET address no interface of this machine holds.
    const absent = ['192.0.2.1', '192.0.2.77', '198.51.100.7', '203.0.113.9'].find((x) => !own.some((a) => a.address === x))!;
    const port = (address: string) => [{ host: 18080, container: 8080, address, protocol: 'tcp' as const }];
    const addresses = [absent, '127.0.0.1', '127.0.1.1', '127.0.0.2', '0.0.0.0', ...(external ? [external.address] : [])];
    const grants = { network: { publish: [[{ ports: { from: 1024, to: 65535 }, addresses }]], egress: 'any' as const } };
    const net = new NetworkManager({ stateDir: join(dir, 'addresses') });
    try {
      // The agent's check lets it through (a VIP this standby node takes over, an address DHCP gives later)...
      expect(codeOf(() => checkNetworkAsk({ network: 'bridge', ports: ['8080/tcp'] }, port(absent), grants, net))).toBeUndefined();
      // ...and the deploy's message says it.
      expect(publishAddressNote(port(absent))).toContain(`published on ${absent}, not an address of this host now`);
      // ct run refuses it, naming the address.
      const refused = (() => {
        try {
          checkPublishAddresses(port(absent));
        } catch (e) {
          return e as { code?: string; message: string };
        }
        return undefined;
      })();
      expect(refused?.code).toBe('PORT_NOT_ALLOWED');
      expect(refused?.message).toContain(`published on ${absent}, which is not an address of this machine`);
      for (const here of ['127.0.0.1', '127.0.1.1', '127.0.0.2', '0.0.0.0', ...(external ? [external.address] : [])]) {
        expect([here, codeOf(() => checkPublishAddresses(port(here)))]).toEqual([here, undefined]);
        expect([here, publishAddressNote(port(here))]).toEqual([here, undefined]);
      }
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
