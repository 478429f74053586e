import { networkInterfaces } from 'node:os';
import { CtError } from '../../src/core/errors.js';
import type { PublishedPort } from '../../src/protocol/ports.js';

/** Every address: published on whatever the machine has. */
const EVERY = '0.0.0.0';

/** 127.0.0.0/8 is loopback whatever the interfaces list (Debian names the host 127.0.1.1). */
function isLoopback(address: string): boolean {
  return address.startsWith('127.');
}

/**
 * The ports published on an address this machine does not have now: their DNAT rule matches
 * nothing until it has it. Read when asked (addresses come and go).
 */
export function absentPublishAddresses(ports: readonly PublishedPort[], interfaces = networkInterfaces()): PublishedPort[] {
  const own = new Set(Object.values(interfaces).flatMap((list) => (list ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address)));
  return ports.filter((p) => p.address !== EVERY && !isLoopback(p.address) && !own.has(p.address));
}

/**
 * `ct run -p ADDRESS:HOST:CONTAINER`: refused before anything is set up when the address is not
 * this machine's (as Docker fails to bind it): the run is interactive, on one machine, and a port
 * that looks published while nothing reaches it is a mistake to say at once.
 */
export function checkPublishAddresses(ports: readonly PublishedPort[], interfaces = networkInterfaces()): void {
  const missing = absentPublishAddresses(ports, interfaces)[0];
  if (missing) {
    throw new CtError('PORT_NOT_ALLOWED', `port ${missing.host}/${missing.protocol} is published on ${missing.address}, which is not an address of this machine: publish on one of its addresses, 127.0.0.1 or 0.0.0.0 (every address)`, { address: missing.address, port: missing.host });
  }
}

/**
 * The agent's desired state: an address not (yet) here is deployed and said, not refused. It may
 * be a keepalived VIP this node takes over as standby, or one DHCP gives later; the DNAT rule
 * (-d ADDRESS) matches once the address is here. Cut to fit the server's 200-character host note.
 */
export function publishAddressNote(ports: readonly PublishedPort[], interfaces = networkInterfaces()): string | undefined {
  const missing = [...new Set(absentPublishAddresses(ports, interfaces).map((p) => p.address))];
  if (missing.length === 0) return undefined;
  const shown = missing.slice(0, 2).join(', ') + (missing.length > 2 ? ` and ${missing.length - 2} more` : '');
  return `published on ${shown}, not an address of this host now: reached once it is (a VIP, DHCP)`;
}
