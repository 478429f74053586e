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
 * and no IPv6 path exists for any of them to miss. The container's loopback keeps IPv6 (::1).
 */

/** Asked at each call (a stat): a kernel booted with ipv6.disable=1 has nothing to turn off. */
function hasIpv6(): boolean {
  return existsSync('/proc/sys/net/ipv6');
}

/** The interface netavark makes in the container's namespace (netavark.ts: `interface_name`). */
const CONTAINER_INTERFACE = 'eth0';

/**
 * For the container's OCI config (`linux.sysctl`): runc writes them in the container's network
 * namespace before the app starts (and before /proc/sys is made read-only), with no process of
 * ours on the start path. netavark made eth0 before: it is turned off by name, and `default` for
 * any interface made later. Not `all`: that would take ::1 from lo too, and `lo=0` after it
 * cannot be ordered (runc applies the map in no order). Empty on a kernel without IPv6 (the keys
 * do not exist there, and runc would refuse to start).
 */
export function containerIpv6Sysctls(): Record<string, string> {
  if (!hasIpv6()) return {};
  return { 'net.ipv6.conf.default.disable_ipv6': '1', [`net.ipv6.conf.${CONTAINER_INTERFACE}.disable_ipv6`]: '1' };
}

/**
 * The same in the namespace of a container that is running already: one an earlier agent started
 * with IPv6 on (recover(), once per container and agent). /proc/sys/net is the writing process's
 * namespace: `nsenter --net` (util-linux, essential) and the shell's `echo`, no `sysctl` binary.
 */
export async function disableIpv6InNamespace(netnsPath: string): Promise<void> {
  if (!hasIpv6()) return;
  const writes = Object.keys(containerIpv6Sysctls()).map((k) => `echo 1 > /proc/sys/${k.replace(/\./g, '/')}`).join(' && ');
  const r = await runTool('nsenter', [`--net=${netnsPath}`, '/bin/sh', '-c', writes], { timeoutMs: 10_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'nsenter (util-linux) is not installed', { tool: 'nsenter' });
  if (r.code !== 0) throw new CtError('NETWORK_SETUP_FAILED', `turning IPv6 off in ${netnsPath}: ${(r.stderr.trim() || r.stdout.trim() || `exit ${r.code}`).slice(0, 300)}`, { netns: netnsPath });
}

/**
 * On the host's side of the bridge, after netavark made it (again at every setup: netavark
 * re-creates a bridge that went with its last container), and at every recover() for the bridges
 * in use (those an earlier agent left with IPv6 on). An IPv6 packet a container sends anyway (its
 * namespace's IPv6 on: a container an earlier agent started, raw sockets, or IPv6 turned back on
 * with CAP_NET_ADMIN) is dropped on arrival by the bridge (ip6_rcv on an interface with
 * disable_ipv6), never delivered to a host socket or routed on. A /proc write: no process.
 */
export async function disableIpv6OnBridge(bridge: string, o: { ifExists?: boolean } = {}): Promise<void> {
  if (!hasIpv6()) return;
  assertBridgeName(bridge);
  try {
    await writeFile(`/proc/sys/net/ipv6/conf/${bridge}/disable_ipv6`, '1\n');
  } catch (e) {
    if (o.ifExists && (e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new CtError('NETWORK_SETUP_FAILED', `turning IPv6 off on bridge ${bridge}: ${(e as Error).message}`, { bridge });
  }
}

/** A bridge name as the kernel takes it (IFNAMSIZ, no path characters): it is joined into /sys and /proc paths. */
export function assertBridgeName(bridge: string): void {
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(bridge)) throw new CtError('NETWORK_SETUP_FAILED', `bridge name ${bridge} is not an interface name`, { bridge });
}
