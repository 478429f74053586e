import { runTool } from '../runtime/tools.js';
import type { Egress } from './types.js';

/**
 * The firewall rules that narrow an environment's egress below netavark's default (which
 * masquerades everything to the outside). They live in the mangle table, which the kernel walks
 * before filter: netavark rewrites filter's FORWARD (its jump and per-network ACCEPTs come and go
 * as other networks are set up and torn down), and a DROP that depends on staying ahead of those
 * was seen bypassed while other networks changed. Each carries a comment naming the bridge, so
 * that it can be listed and removed exactly.
 */
const TABLE = ['-t', 'mangle'];
function rules(bridge: string, egress: Egress, prefix: string): { chain: string; spec: string[] }[] {
  const comment = ['-m', 'comment', '--comment', `cerro-torre egress ${bridge}`];
  if (egress === 'any') {
    // Environments stay apart without relying on netavark's `isolate` chains, which are shared by
    // every network and were seen gone while another network was torn down: new connections from
    // this bridge to another of ours are dropped (inserted in reverse: the RETURN for traffic that
    // stays on this bridge ends up first).
    return [
      { chain: 'FORWARD', spec: ['-i', bridge, '-o', `${prefix}+`, '-m', 'conntrack', '--ctstate', 'NEW', ...comment, '-j', 'DROP'] },
      { chain: 'FORWARD', spec: ['-i', bridge, '-o', bridge, ...comment, '-j', 'RETURN'] },
    ];
  }
  const out = [
    // New connections leaving the bridge (to the outside or another bridge) are dropped; replies
    // to connections made to published ports are not new.
    { chain: 'FORWARD', spec: ['-i', bridge, '!', '-o', bridge, '-m', 'conntrack', '--ctstate', 'NEW', ...comment, '-j', 'DROP'] },
  ];
  if (egress === 'none') {
    // Nothing reaches the host either, except aardvark-dns on the gateway.
    out.push({ chain: 'INPUT', spec: ['-i', bridge, '-m', 'conntrack', '--ctstate', 'NEW', ...comment, '-j', 'DROP'] });
    out.push({ chain: 'INPUT', spec: ['-i', bridge, '-p', 'udp', '--dport', '53', ...comment, '-j', 'ACCEPT'] });
    out.push({ chain: 'INPUT', spec: ['-i', bridge, '-p', 'tcp', '--dport', '53', ...comment, '-j', 'ACCEPT'] });
  }
  return out;
}

async function iptables(args: string[]): Promise<boolean> {
  const r = await runTool('iptables', ['-w', '10', ...args], { timeoutMs: 30_000 });
  return r.code === 0;
}

/** Installs the rules for the bridge's egress (idempotent; the last inserted ends up first). */
export async function applyEgress(bridge: string, egress: Egress, bridgePrefix: string): Promise<void> {
  await removeEgress(bridge);
  for (const r of rules(bridge, egress, bridgePrefix)) {
    if (!(await iptables([...TABLE, '-I', r.chain, '1', ...r.spec]))) throw new Error(`iptables -I ${r.chain} ${r.spec.join(' ')} failed`);
  }
}

/** Removes every rule this module installed for the bridge, whatever egress it was for. */
export async function removeEgress(bridge: string): Promise<void> {
  for (const chain of ['FORWARD', 'INPUT']) {
    const listed = await runTool('iptables', ['-w', '10', ...TABLE, '-S', chain], { timeoutMs: 30_000 });
    for (const line of listed.stdout.split('\n')) {
      if (!line.includes(`cerro-torre egress ${bridge}"`)) continue;
      // `-S` prints `-A CHAIN spec…` with the comment quoted: delete by position-free spec.
      const spec = line.replace(/^-A \S+ /, '');
      const args = spec.match(/"[^"]*"|\S+/g)!.map((a) => a.replace(/^"(.*)"$/, '$1'));
      await iptables([...TABLE, '-D', chain, ...args]);
    }
  }
}
