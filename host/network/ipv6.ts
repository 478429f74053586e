import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { CtError } from '../../src/core/errors.js';
import { runTool } from '../runtime/tools.js';

/**
 * Our networks are IPv4-only (netavark documents with `ipv6_enabled: false`) and so are the egress
 * rules (egress.ts, iptables). The kernel still gives every bridge and container interface an
 * fe80:: link-local address, and a container in an `egress: none` environment reached host
 * services listening on [::] at `[fe80::<bridge>%eth0]`. So IPv6 is turned off on both sides of
 * the bridge rather than the rules mirrored in ip6tables: nothing to keep in step per egress mode,
 * and no IPv6 path exists for any of them to miss.
 */

const NO_IPV6 = !existsSync('/proc/sys/net/ipv6');

/**
 * In the container's namespace, before netavark makes eth0 there: `default` so that eth0 is born
 * without IPv6 (no link-local address is ever configured), `all` for lo and what exists already.
 * The container cannot turn it back on: /proc/sys is read-only inside (oci-config READONLY_PATHS).
 */
export async function disableIpv6InNamespace(netns: string): Promise<void> {
  if (NO_IPV6) return; // a kernel without IPv6 (ipv6.disable=1): nothing to turn off
  const r = await runTool('ip', ['netns', 'exec', netns, 'sysctl', '-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv6.conf.all.disable_ipv6=1'], { timeoutMs: 10_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'ip (iproute2) is not installed', { tool: 'ip' });
  if (r.code !== 0) throw new CtError('NETWORK_SETUP_FAILED', `turning IPv6 off in ${netns}: ${(r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).slice(0, 300)}`, { netns });
}

/**
 * On the host's side of the bridge, after netavark made it (again at every setup: netavark
 * re-creates a bridge that went with its last container). An IPv6 packet a container crafts anyway
 * (AF_PACKET with CAP_NET_RAW, or IPv6 turned back on with CAP_NET_ADMIN in its namespace) is
 * dropped on arrival by the bridge (ip6_rcv on an interface with disable_ipv6), never delivered to
 * a host socket or routed on.
 */
export async function disableIpv6OnBridge(bridge: string): Promise<void> {
  if (NO_IPV6) return;
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(bridge)) throw new CtError('NETWORK_SETUP_FAILED', `bridge name ${bridge} is not an interface name`, { bridge });
  try {
    await writeFile(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, '1\n');
  } catch (e) {
    throw new CtError('NETWORK_SETUP_FAILED', `turning IPv6 off on bridge ${bridge}: ${(e as Error).message}`, { bridge });
  }
}
