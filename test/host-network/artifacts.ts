import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stateScope } from '../../host/runtime/scope.js';

/**
 * What netavark and host/network leave on the machine, listed the way an operator would: network
 * namespaces, bridges and veths (`ip`), and firewall rules (`iptables-save`) that name one of the
 * given subnets, bridges or containers, and bridge-family rules (`ebtables-save`) that name one of the subnets,
 * jumps on a veth of the bridges, and anti-spoofing chains left empty. Tests compare this with the containers that still run.
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
  // The anti-spoofing chains (host/network/anti-spoofing.ts): their rules name the container's
  // address; the jumps to them name a veth of one of the bridges (or the bridge, where the kernel
  // matches it); and a chain with no rule at all is a leak of any test's.
  const ebt = execFileSync('ebtables-save', { encoding: 'utf8' }).split('\n');
  const ourVeths = new Set(links.filter((l) => l.master && ours.includes(l.master)).map((l) => l.ifname));
  const jumps = ebt.filter((l) => /^-A (INPUT|FORWARD) .*-j ct-as-/.test(l) && l.split(' ').some((w, i, a) => (w === '-i' && ourVeths.has(a[i + 1] ?? '')) || (w === '--logical-in' && (a[i + 1] ?? '').startsWith(o.bridgePrefix))));
  const empty = ebt.filter((l) => l.startsWith(':ct-as-')).map((l) => l.slice(1).split(' ')[0]).filter((c) => !ebt.some((l) => l.startsWith(`-A ${c} `))).map((c) => `empty chain ${c}`);
  const guards = [...ebt.filter((l) => l.startsWith('-A') && l.includes(`${o.subnetBase}.`)), ...jumps, ...empty];
  return {
    netns: ((netns.trim() ? JSON.parse(netns) : []) as { name: string }[]).map((n) => n.name.replace(/-[0-9a-f]{8}$/, '')).filter((n) => n.startsWith(o.netnsPrefix)).sort(),
    bridges: ours.sort(),
    veths: links.filter((l) => l.master && ours.includes(l.master)).map((l) => l.ifname).sort(),
    rules: [...rules, ...guards],
  };
}

/**
 * Removes the anti-spoofing chains of a state directory's scope (host/runtime/scope.ts) and the
 * jumps to them, and returns their lines as they were: a test's afterAll asserts none were left.
 */
export function removeGuardChains(scope: string): string[] {
  const left = execFileSync('ebtables-save', { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`ct-as-${scope}-`));
  for (const l of left.filter((x) => /^-A (INPUT|FORWARD) /.test(x))) execFileSync('sh', ['-c', `ebtables ${l.replace(/^-A/, '-D')}`]);
  for (const c of left.filter((x) => x.startsWith(':')).map((x) => x.slice(1).split(' ')[0])) execFileSync('sh', ['-c', `ebtables -F ${c} && ebtables -X ${c}`]);
  return left;
}

/** What an agent from before the guards left in a state directory: no guard chains, no port recorded (guard_* NULL). */
export function asBeforeGuards(stateDir: string): void {
  removeGuardChains(stateScope(stateDir));
  const db = new Database(join(stateDir, 'state.db'));
  db.prepare('UPDATE net_attachments SET guard_port = NULL, guard_ifindex = NULL, guard_mac = NULL').run();
  db.close();
}
