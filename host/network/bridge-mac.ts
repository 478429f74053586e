import { readFile } from 'node:fs/promises';
import { CtError } from '../../src/core/errors.js';
import { runTool } from '../runtime/tools.js';
import { assertBridgeName } from './ipv6.js';

/**
 * A Linux bridge whose MAC address nobody set takes the lowest MAC of its ports, again at every
 * port that comes or goes (br_stp_recalculate_bridge_id), and netavark 1.4 sets none. The bridge's
 * MAC is the gateway's: when the container whose veth had the lowest MAC left (detach, suspend),
 * the gateway's MAC changed under its neighbours, whose ARP caches still held the old one (for up
 * to ~40 s: REACHABLE, then DELAY and PROBE). Their frames to the gateway were then bridged to the
 * other ports instead of reaching the host: no DNS (aardvark-dns), no host, no outside for any
 * egress, until the entry failed. Set once (addr_assign_type 3, NET_ADDR_SET), the kernel leaves
 * the MAC alone. It is set to the one the bridge has: changing it would be that same disruption.
 */
const NET_ADDR_SET = '3';

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/**
 * Pins the bridge's MAC to the one it has, unless set already (a /sys read, no process): at every
 * setup, right after netavark made the bridge with its first port (netavark re-creates a bridge
 * that went with its last container), and at recover() for the bridges in use (an earlier agent's,
 * not pinned).
 */
export async function pinBridgeMac(bridge: string, o: { ifExists?: boolean } = {}): Promise<void> {
  assertBridgeName(bridge);
  let type: string;
  let mac: string;
  try {
    [type, mac] = (await Promise.all(['addr_assign_type', 'address'].map((f) => readFile(`/sys/class/net/${bridge}/${f}`, 'utf8')))).map((s) => s.trim());
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new CtError('NETWORK_SETUP_FAILED', `reading the MAC of bridge ${bridge}: ${(e as Error).message.slice(0, 300)}`, { bridge });
    // Not in this /sys: no such bridge, or an agent in a network namespace whose /sys is another's
    // (`nsenter --net`). Asked of `ip`, which speaks to this namespace; how the MAC was assigned
    // is not shown there, so it is set (again): one gratuitous ARP of the gateway, harmless.
    const shown = await runTool('ip', ['-j', 'link', 'show', 'dev', bridge], { timeoutMs: 10_000 });
    const found = shown.code === 0 ? (JSON.parse(shown.stdout || '[]') as { address?: unknown }[])[0]?.address : undefined;
    if (typeof found !== 'string') {
      if (o.ifExists) return;
      throw new CtError('NETWORK_SETUP_FAILED', `bridge ${bridge} not found`, { bridge });
    }
    type = '';
    mac = found;
  }
  if (type === NET_ADDR_SET) return;
  if (!MAC.test(mac)) throw new CtError('NETWORK_SETUP_FAILED', `bridge ${bridge} has no MAC address to keep`, { bridge });
  const r = await runTool('ip', ['link', 'set', 'dev', bridge, 'address', mac], { timeoutMs: 10_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'ip (iproute2) is not installed', { tool: 'ip' });
  if (r.code !== 0) throw new CtError('NETWORK_SETUP_FAILED', `pinning the MAC of bridge ${bridge}: ${(r.stderr.trim() || `exit ${r.code}`).slice(0, 300)}`, { bridge });
}
