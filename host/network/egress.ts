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

/** Our lines for the bridge in the mangle table now, as `-D` lines for iptables-restore (one `iptables-save`). */
async function deletions(bridge: string): Promise<string[]> {
  const r = await runTool('iptables-save', ['-t', 'mangle'], { timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`iptables-save -t mangle: ${r.stderr.trim().slice(0, 300)}`);
  return r.stdout.split('\n').filter((l) => /^-A (FORWARD|INPUT) /.test(l) && l.includes(`cerro-torre egress ${bridge}"`)).map((l) => `-D${l.slice(2)}`);
}

/** One atomic iptables-restore of the mangle table (nothing else in it is touched). */
async function restore(lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const r = await runTool('iptables-restore', ['-w', '10', '--noflush'], { input: `*mangle\n${lines.join('\n')}\nCOMMIT\n`, timeoutMs: 30_000 });
  if (r.code !== 0) throw new Error(`iptables-restore (mangle): ${r.stderr.trim().slice(0, 300)}`);
}

const quote = (a: string) => (/\s/.test(a) ? `"${a}"` : a);

/**
 * Installs the rules for the bridge's egress (idempotent; the last inserted ends up first): the
 * old ones out and the new ones in, in one transaction (two processes, whatever the rule count).
 */
export async function applyEgress(bridge: string, egress: Egress, bridgePrefix: string): Promise<void> {
  const lines = await deletions(bridge);
  for (const r of rules(bridge, egress, bridgePrefix)) lines.push(`-I ${r.chain} 1 ${r.spec.map(quote).join(' ')}`);
  await restore(lines);
}

/** Removes every rule this module installed for the bridge, whatever egress it was for. */
export async function removeEgress(bridge: string): Promise<void> {
  await restore(await deletions(bridge));
}
