import { CtError } from '../../src/core/errors.js';
import type { RuntimeSpec } from '../../src/bundle/manifest.js';
import type { PublishedPort } from '../../src/protocol/ports.js';
import { checkPublishedPorts, dnsNameOf, type AttachRequest, type NetworkManager } from '../network/index.js';
import type { OciConfig, RuntimeGrants } from '../enforce/types.js';

/**
 * Judges what an assignment asks of the network before anything is unpacked or started: ports
 * only with `network = "bridge"`, each declared by the bundle and allowed by the policies
 * (PORT_NOT_ALLOWED), and bridge mode only where this agent can set bridges up (a rootless agent
 * has no NetworkManager: NETWORK_ROOTLESS_UNSUPPORTED).
 */
export function checkNetworkAsk(runtime: RuntimeSpec | undefined, ports: readonly PublishedPort[], grants: RuntimeGrants, network: NetworkManager | undefined): void {
  const mode = runtime?.network ?? 'none';
  if (ports.length > 0 && mode !== 'bridge') {
    throw new CtError('PORT_NOT_ALLOWED', `ports are published (the desired state's ports, or ct run -p) but the bundle's network is ${JSON.stringify(mode)}: ports need network = "bridge" in its ct.toml [runtime]`, { network: mode });
  }
  if (mode !== 'bridge') return;
  if (!network || process.getuid?.() !== 0) {
    throw new CtError('NETWORK_ROOTLESS_UNSUPPORTED', 'network = "bridge" needs a root agent with netavark; this agent runs rootless (use network = "none")', {});
  }
  checkPublishedPorts(ports, runtime?.ports, grants.network);
}

/**
 * What a deploy that started should say of the app's network besides: an app on a bridge whose
 * name is not a DNS label has no name in its environment's DNS (netavark.ts, dnsNameOf). It runs,
 * but the apps that reached it by name get no answer: said in the deploy's message and the host's
 * log rather than found out from a failing peer.
 */
export function networkNote(runtime: RuntimeSpec | undefined, app: string): string | undefined {
  if (runtime?.network !== 'bridge' || dnsNameOf(app) !== undefined) return undefined;
  // The name is cut so the whole explanation fits the server's 200-character note.
  const shown = app.length > 40 ? `${app.slice(0, 40)}…` : app;
  return `app ${JSON.stringify(shown)} has no DNS name in its environment: only a single label (letters, digits, - and _, at most 63) is one, and other apps reach it by address only`;
}

/** Attaches the container to its environment's bridge and points the OCI config at the netns and resolv.conf, with IPv6 off there. */
export async function attachNetwork(network: NetworkManager, config: OciConfig, req: AttachRequest): Promise<void> {
  const attached = await network.attach(req);
  const ns = config.linux.namespaces.find((n) => n.type === 'network');
  if (ns) ns.path = attached.netnsPath;
  else config.linux.namespaces.push({ type: 'network', path: attached.netnsPath });
  // IPv6 off in the namespace, ::1 kept (network/ipv6.ts): runc applies it, no process of ours.
  config.linux.sysctl = { ...config.linux.sysctl, ...attached.sysctl };
  config.mounts.push({ destination: '/etc/resolv.conf', type: 'bind', source: attached.resolvConf, options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'] });
}
