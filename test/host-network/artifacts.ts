import { execFileSync } from 'node:child_process';

/**
 * What netavark and host/network leave on the machine, listed the way an operator would: network
 * namespaces, bridges and veths (`ip`), and firewall rules (`iptables-save`) that name one of the
 * given subnets, bridges or containers, and bridge-family rules (`ebtables-save`) that name one of the subnets. Tests compare this with the containers that still run.
 */
export interface NetArtifacts {
  /** The containers whose network namespaces exist: the namespace names without their state directory's scope (host/runtime/scope.ts). */
  netns: string[];
  bridges: string[];
  /** Host-side veths enslaved to one of the bridges. */
  veths: string[];
  rules: string[];
}

export function listArtifacts(o: { netnsPrefix: string; bridgePrefix: string; subnetBase: string }): NetArtifacts {
  const netns = execFileSync('ip', ['-j', 'netns', 'list'], { encoding: 'utf8' });
  const links = JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })) as { ifname: string; master?: string; link_type?: string; linkinfo?: unknown }[];
  const bridges = JSON.parse(execFileSync('ip', ['-j', 'link', 'show', 'type', 'bridge'], { encoding: 'utf8' })) as { ifname: string }[];
  const ours = bridges.map((b) => b.ifname).filter((n) => n.startsWith(o.bridgePrefix) && /^\d+$/.test(n.slice(o.bridgePrefix.length)));
  const rules = execFileSync('iptables-save', { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('-A') && (l.includes(`${o.subnetBase}.`) || ours.some((b) => l.includes(b)) || l.includes(o.netnsPrefix) || new RegExp(`${o.bridgePrefix}[\\d+-]`).test(l)));
  // The anti-spoofing chains (host/network/anti-spoofing.ts): their rules name the container's address.
  const guards = execFileSync('ebtables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith('-A') && l.includes(`${o.subnetBase}.`));
  return {
    netns: ((netns.trim() ? JSON.parse(netns) : []) as { name: string }[]).map((n) => n.name.replace(/-[0-9a-f]{8}$/, '')).filter((n) => n.startsWith(o.netnsPrefix)).sort(),
    bridges: ours.sort(),
    veths: links.filter((l) => l.master && ours.includes(l.master)).map((l) => l.ifname).sort(),
    rules: [...rules, ...guards],
  };
}
