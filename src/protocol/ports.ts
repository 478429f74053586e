/** A host port published to a container port (desired state `ports:`, assignment `ports`). */
export interface PublishedPort {
  host: number;
  container: number;
  /** IPv4 address on the host to publish on; 0.0.0.0 means every address. */
  address: string;
  protocol: 'tcp' | 'udp' | 'sctp';
}

export const MAX_PUBLISHED_PORTS = 32;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const PROTOCOLS = new Set(['tcp', 'udp', 'sctp']);

const isPort = (n: unknown): n is number => typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 65535;

/**
 * Validates a list of published ports (from YAML or from the wire): at most 32, each with a host
 * and container port 1-65535, an IPv4 address (default 127.0.0.1: publishing on every address is
 * asked for explicitly with 0.0.0.0) and tcp, udp or sctp (default tcp). Returns the problem of
 * the first bad entry as text, or the normalised list.
 */
export function parsePublishedPorts(v: unknown): { ports: PublishedPort[] } | { problem: string } {
  if (v === undefined || v === null) return { ports: [] };
  if (!Array.isArray(v)) return { problem: 'must be a list' };
  if (v.length > MAX_PUBLISHED_PORTS) return { problem: `at most ${MAX_PUBLISHED_PORTS} ports` };
  const out: PublishedPort[] = [];
  for (const [i, p] of v.entries()) {
    if (!p || typeof p !== 'object' || Array.isArray(p)) return { problem: `[${i}] must be a map with host, container, address, protocol` };
    const e = p as Record<string, unknown>;
    const unknown = Object.keys(e).find((k) => !['host', 'container', 'address', 'protocol'].includes(k));
    if (unknown) return { problem: `[${i}].${unknown.slice(0, 32)}: unknown field` };
    if (!isPort(e.host)) return { problem: `[${i}].host must be a port 1-65535` };
    if (!isPort(e.container)) return { problem: `[${i}].container must be a port 1-65535` };
    const address = e.address ?? '127.0.0.1';
    if (typeof address !== 'string' || !IPV4.test(address)) return { problem: `[${i}].address must be an IPv4 address` };
    const protocol = e.protocol ?? 'tcp';
    if (typeof protocol !== 'string' || !PROTOCOLS.has(protocol)) return { problem: `[${i}].protocol must be tcp, udp or sctp` };
    out.push({ host: e.host, container: e.container, address, protocol: protocol as PublishedPort['protocol'] });
  }
  return { ports: out };
}

/**
 * A `-p` flag as `docker run` takes it: `HOST:CONTAINER[/PROTO]` or `ADDR:HOST:CONTAINER[/PROTO]`.
 * Without an address the port is published on 127.0.0.1 (docker's default is every address; here
 * every address is asked for with `0.0.0.0:`). Returns the port or the problem as text.
 */
export function parsePublishFlag(spec: string): { port: PublishedPort } | { problem: string } {
  const m = /^(?:([0-9.]+):)?(\d{1,5}):(\d{1,5})(?:\/([a-z]+))?$/.exec(spec);
  if (!m) return { problem: `${JSON.stringify(spec.slice(0, 64))} is not [ADDRESS:]HOST:CONTAINER[/tcp|udp|sctp]` };
  const parsed = parsePublishedPorts([{ host: Number(m[2]), container: Number(m[3]), ...(m[1] ? { address: m[1] } : {}), ...(m[4] ? { protocol: m[4] } : {}) }]);
  return 'problem' in parsed ? { problem: `${spec}: ${parsed.problem.replace(/^\[0\]\./, '')}` } : { port: parsed.ports[0] };
}
