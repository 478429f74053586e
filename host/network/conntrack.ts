import { CtError } from '../../src/core/errors.js';
import { runTool } from '../runtime/tools.js';

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/**
 * Removes the host's conntrack entries of a container address: those the container opened (the
 * original direction's source) and those opened to it, by a neighbour, the host or through a
 * published port (the reply direction's source, after DNAT). The egress rules (egress.ts) let
 * RELATED and ESTABLISHED packets through ahead of their DROPs, so the entries of a container that
 * left outlived it: the next container given its address (`none`, say) could go on with a flow
 * its predecessor (`any`) had opened, a UDP one in particular (refreshed by any datagram of the
 * same ports). Done at teardown (the address may be given again) and before a container starts
 * on an address (attach, resume), where a failure refuses the start.
 *
 * The `conntrack` tool (Debian's conntrack, conntrack-tools): the kernel takes deletions only over
 * netlink, which Node has no socket for. It exits 1 when nothing matched, which is success here.
 */
export async function flushConntrack(address: string): Promise<void> {
  if (!IPV4.test(address) || address.split('.').some((o) => Number(o) > 255)) throw new CtError('NETWORK_SETUP_FAILED', `conntrack: ${address} is not an IPv4 address`, { address });
  const results = await Promise.all([['-s', address], ['-r', address]].map((filter) => runTool('conntrack', ['-D', '-f', 'ipv4', ...filter], { timeoutMs: 10_000, keepOutputBytes: 4096 })));
  for (const r of results) {
    if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'conntrack (Debian\'s conntrack package) is not installed', { tool: 'conntrack' });
    // "N flow entries have been deleted." on stderr, with exit 0 when N > 0 and 1 when N is 0.
    if (!(r.code === 0 || r.code === 1) || !/\d+ flow entries have been deleted/.test(r.stderr)) {
      throw new CtError('NETWORK_SETUP_FAILED', `conntrack -D for ${address}: ${(r.stderr.trim() || `exit ${r.code ?? r.signal}`).slice(0, 300)}`, { address });
    }
  }
}
