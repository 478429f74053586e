import { CtError } from '../../src/core/errors.js';
import type { NetworkGrants, PublishRule, PublishedPort } from './types.js';

/**
 * Judges the ports an assignment publishes, before anything starts: each must be declared by the
 * bundle (`[runtime] ports`, "8080/tcp") and allowed by a policy rule for its host port, address
 * and protocol; two entries may not take one host port. PORT_NOT_ALLOWED names the first refusal.
 */
export function checkPublishedPorts(ports: readonly PublishedPort[], declared: readonly string[] | undefined, grants: NetworkGrants | undefined): void {
  const declaredSet = new Set(declared ?? []);
  const seen = new Set<string>();
  for (const p of ports) {
    const where = `${p.address}:${p.host}->${p.container}/${p.protocol}`;
    if (!declaredSet.has(`${p.container}/${p.protocol}`)) {
      throw new CtError('PORT_NOT_ALLOWED', `${where}: the bundle does not declare container port ${p.container}/${p.protocol} in [runtime] ports`, { port: p, declared: [...declaredSet] });
    }
    const allows = (r: PublishRule) => p.host >= r.ports.from && p.host <= r.ports.to && (r.addresses ?? ['127.0.0.1']).includes(p.address) && (r.protocols ?? ['tcp']).includes(p.protocol);
    const sets = grants?.publish ?? [];
    if (sets.length === 0 || !sets.every((rules) => rules.some(allows))) {
      throw new CtError('PORT_NOT_ALLOWED', `${where}: no policy rule (runtime.network.publish) allows publishing this host port, address and protocol`, {
        port: p, allowed: grants?.publish ?? [],
      });
    }
    const key = `${p.protocol}/${p.host}`;
    if (seen.has(key)) throw new CtError('PORT_IN_USE', `${where}: host port ${p.host}/${p.protocol} is published twice`, { port: p });
    seen.add(key);
  }
}
