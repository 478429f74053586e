import { networkInterfaces } from 'node:os';
import { CtError } from '../../src/core/errors.js';
import type { PublishedPort } from '../../src/protocol/ports.js';

/** Every address, and loopback: published on whatever the machine has. */
const ALWAYS = new Set(['0.0.0.0', '127.0.0.1']);

/**
 * A port published on a given address (`-p ADDRESS:HOST:CONTAINER`, or the desired state's
 * `address`) needs that address on this machine, as Docker requires: a DNAT rule for an address
 * the host does not have never matches, and the port would look published while nothing reaches
 * it. Read when asked (addresses come and go), and refused before anything is set up.
 */
export function checkPublishAddresses(ports: readonly PublishedPort[], interfaces = networkInterfaces()): void {
  const own = new Set(Object.values(interfaces).flatMap((list) => (list ?? []).filter((a) => a.family === 'IPv4').map((a) => a.address)));
  const missing = ports.find((p) => !ALWAYS.has(p.address) && !own.has(p.address));
  if (missing) {
    throw new CtError('PORT_NOT_ALLOWED', `port ${missing.host}/${missing.protocol} is published on ${missing.address}, which is not an address of this machine: publish on one of its addresses, 127.0.0.1 or 0.0.0.0 (every address)`, { address: missing.address, port: missing.host });
  }
}
