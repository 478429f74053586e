import { createHash } from 'node:crypto';
import { access, constants } from 'node:fs/promises';
import { CtError } from '../../src/core/errors.js';
import { runTool, type ToolResult } from '../runtime/tools.js';
import type { PublishedPort } from './types.js';

/** Where Debian, Fedora and upstream put netavark and aardvark-dns (Podman's helper directories). */
const HELPER_DIRS = ['/usr/libexec/podman', '/usr/lib/podman', '/usr/local/libexec/podman', '/usr/local/lib/podman'];

export interface NetavarkPaths {
  netavark: string;
  aardvark: string;
}

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds netavark and aardvark-dns, or HOST_TOOL_MISSING naming what is absent. */
export async function findNetavark(dirs: readonly string[] = HELPER_DIRS): Promise<NetavarkPaths> {
  const found: Partial<NetavarkPaths> = {};
  for (const d of dirs) {
    if (!found.netavark && (await executable(`${d}/netavark`))) found.netavark = `${d}/netavark`;
    if (!found.aardvark && (await executable(`${d}/aardvark-dns`))) found.aardvark = `${d}/aardvark-dns`;
  }
  if (!found.netavark || !found.aardvark) {
    const tool = found.netavark ? 'aardvark-dns' : 'netavark';
    throw new CtError('HOST_TOOL_MISSING', `${tool} is not installed (looked in ${dirs.join(', ')}); install Debian's netavark and aardvark-dns`, { tool, dirs });
  }
  return found as NetavarkPaths;
}

export interface BridgeNetwork {
  /** netavark's network name; aardvark-dns keys its records on it. */
  name: string;
  bridge: string;
  subnet: string;
  gateway: string;
}

/**
 * The options document of `netavark setup` / `teardown` (netavark 1.x `NetworkOptions`): one
 * bridge network with DNS, isolated from other bridges (`isolate`), a static address (netavark
 * has no IPAM of its own), the app's name as DNS alias, and the published ports.
 */
export function netavarkDocument(o: { containerId: string; app: string; address: string; network: BridgeNetwork; ports: readonly PublishedPort[] }): string {
  const id = createHash('sha256').update(`cerro-torre network ${o.network.name} ${o.network.bridge}`).digest('hex');
  return JSON.stringify({
    container_id: o.containerId,
    container_name: o.app,
    networks: { [o.network.name]: { interface_name: 'eth0', static_ips: [o.address], aliases: [o.app] } },
    network_info: {
      [o.network.name]: {
        name: o.network.name,
        id,
        driver: 'bridge',
        network_interface: o.network.bridge,
        subnets: [{ subnet: o.network.subnet, gateway: o.network.gateway }],
        ipv6_enabled: false,
        internal: false,
        dns_enabled: true,
        options: { isolate: 'true' },
      },
    },
    port_mappings: o.ports.map((p) => ({
      // netavark reads "" as every address.
      host_ip: p.address === '0.0.0.0' ? '' : p.address,
      container_port: p.container,
      host_port: p.host,
      range: 1,
      protocol: p.protocol,
    })),
  });
}

/** netavark's own error text ({"error": "..."} on stdout or stderr), bounded. */
export function netavarkError(r: ToolResult): string {
  for (const line of `${r.stdout}\n${r.stderr}`.split('\n').reverse()) {
    try {
      const e = (JSON.parse(line) as { error?: unknown }).error;
      if (typeof e === 'string') return e.slice(0, 500);
    } catch {
      // not a JSON line (netavark also logs plain text, e.g. about syslog)
    }
  }
  return (r.stderr.trim() || r.stdout.trim() || `exit ${r.code ?? r.signal}`).slice(0, 500);
}

/** Runs `netavark setup|teardown <netns>` with the document on stdin. */
export async function netavark(paths: NetavarkPaths, configDir: string, command: 'setup' | 'teardown', netnsPath: string, document: string): Promise<ToolResult> {
  const r = await runTool(paths.netavark, ['--config', configDir, '--aardvark-binary', paths.aardvark, command, netnsPath], { input: document, timeoutMs: 60_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', `${paths.netavark} is not installed`, { tool: paths.netavark });
  return r;
}
