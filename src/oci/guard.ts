import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { CtError } from '../core/errors.js';

/**
 * Where a fetch may go (SPEC §3 "Fetching"): registries outside the allow-list are refused, and
 * so is any host that resolves to a private, loopback, link-local or otherwise non-public address
 * unless that address is explicitly allowed. Every address a name resolves to is checked, and the
 * same check runs again inside the socket's own lookup, so a DNS answer that changes between the
 * check and the connection (rebinding) cannot reach an internal address either.
 */
export interface GuardOptions {
  /** `host` (any port) or `host:port` entries; when absent or empty, every public registry is allowed. */
  allowedRegistries?: string[];
  /** Addresses or CIDR ranges that may be reached although they are not public, e.g. `127.0.0.1`. */
  allowedAddresses?: string[];
}

// Ranges that a reference must never make us reach (RFC 6890 special-purpose registries).
const DENIED_V4: [string, number][] = [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.88.99.0', 24], ['192.168.0.0', 16],
  ['198.18.0.0', 15], ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
];
const DENIED_V6: [string, number][] = [
  ['::', 128], ['::1', 128], ['64:ff9b::', 96], ['100::', 64], ['2001:db8::', 32], ['fc00::', 7], ['fe80::', 10], ['fec0::', 10], ['ff00::', 8],
];

const denied = new BlockList();
for (const [a, p] of DENIED_V4) denied.addSubnet(a, p, 'ipv4');
for (const [a, p] of DENIED_V6) denied.addSubnet(a, p, 'ipv6');

/** IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible forms are judged as the IPv4 they carry. */
function unmap(address: string): { address: string; family: 'ipv4' | 'ipv6' } {
  const m = /^::ffff:(?:0:)?(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (m) return { address: m[1], family: 'ipv4' };
  const hex = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex) {
    const hi = parseInt(hex[1], 16);
    const lo = parseInt(hex[2], 16);
    return { address: `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`, family: 'ipv4' };
  }
  return { address, family: isIP(address) === 4 ? 'ipv4' : 'ipv6' };
}

export function isPublicAddress(address: string): boolean {
  const a = unmap(address);
  if (isIP(a.address) === 0) return false;
  return !denied.check(a.address, a.family);
}

export class NetworkGuard {
  private readonly registries: { host: string; port?: string }[];
  private readonly allowed = new BlockList();
  private readonly hasAllowed: boolean;

  constructor(readonly options: GuardOptions = {}) {
    this.registries = (options.allowedRegistries ?? []).map((e) => splitHostPort(e.trim().toLowerCase()));
    for (const entry of options.allowedAddresses ?? []) {
      const { addr, family, prefix } = parseAllowedAddress(entry);
      if (prefix === undefined) this.allowed.addAddress(addr, family);
      else this.allowed.addSubnet(addr, prefix, family);
    }
    this.hasAllowed = (options.allowedAddresses ?? []).length > 0;
  }

  /** Refuses a registry (host[:port] as written in a reference) that the allow-list does not name. */
  assertRegistryAllowed(registry: string): void {
    if (this.registries.length === 0) return;
    const { host, port } = splitHostPort(registry.toLowerCase());
    const ok = this.registries.some((e) => e.host === host && (e.port === undefined || e.port === port));
    if (!ok) {
      throw new CtError('REGISTRY_NOT_ALLOWED', `registry ${registry} is not in the allowed registries (${this.options.allowedRegistries!.join(', ')})`, { registry });
    }
  }

  /** True when a connection to this address may be made. */
  addressAllowed(address: string): boolean {
    if (isPublicAddress(address)) return true;
    if (!this.hasAllowed) return false;
    const a = unmap(address);
    return this.allowed.check(a.address, a.family);
  }

  private assertAddresses(hostname: string, addresses: LookupAddress[]): void {
    if (addresses.length === 0) throw new CtError('NETWORK_ERROR', `${hostname}: resolves to no address`, { host: hostname });
    const bad = addresses.filter((a) => !this.addressAllowed(a.address));
    if (bad.length > 0) {
      throw new CtError('REGISTRY_NOT_ALLOWED', `${hostname} resolves to ${bad.map((a) => a.address).join(', ')}: private, loopback, link-local or reserved addresses are refused unless allowed (ct: --allow-address ${bad[0].address} or CT_ALLOWED_ADDRESSES; the server: allowedAddresses in its config)`, { host: hostname, addresses: bad.map((a) => a.address) });
    }
  }

  /**
   * The one check for every URL the registry client connects to (reference origin, redirect hops,
   * token realms, upload locations, blob URLs), run before connecting: the scheme must be http(s)
   * and the host must pass assertHostAllowed. An IP literal is judged as that address here,
   * because the socket's guarded lookup is never called for a literal.
   */
  async assertUrlAllowed(url: URL): Promise<void> {
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new CtError('REGISTRY_NOT_ALLOWED', `${url.protocol} URLs are refused (only http and https)`, { url: url.href.slice(0, 200) });
    }
    await this.assertHostAllowed(url.hostname);
  }

  /** Resolves a host name (or takes an IP literal) and checks every address it has. */
  async assertHostAllowed(hostname: string): Promise<void> {
    const bare = hostname.replace(/^\[|\]$/g, '');
    if (isIP(bare)) return this.assertAddresses(bare, [{ address: bare, family: isIP(bare) }]);
    const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
      dnsLookup(bare, { all: true, verbatim: true }, (err, addrs) => (err ? reject(new CtError('NETWORK_ERROR', `${bare}: cannot resolve (${err.code ?? err.message})`, { host: bare }, { cause: err })) : resolve(addrs))),
    );
    this.assertAddresses(bare, addresses);
  }

  /**
   * A `lookup` for net/tls.connect that applies the same check at connection time. Handed to the
   * undici Agent, so every socket, including those opened for redirects and token realms, goes
   * through it.
   */
  readonly lookup = (hostname: string, options: { all?: boolean; family?: number }, callback: (...args: unknown[]) => void): void => {
    dnsLookup(hostname, { all: true, verbatim: true, family: options?.family ?? 0 }, (err, addrs) => {
      if (err) return callback(err);
      try {
        this.assertAddresses(hostname, addrs);
      } catch (e) {
        return callback(e);
      }
      if (options?.all) callback(null, addrs);
      else callback(null, addrs[0].address, addrs[0].family);
    });
  };
}

/** The shortest prefixes an entry may have: the guard's exceptions name a few private networks, not the internet. */
const MIN_PREFIX = { ipv4: 8, ipv6: 16 } as const;

/**
 * One `allowedAddresses` entry: an address, or an address and a prefix length of 1–3 decimal
 * digits. Read strictly because a sloppy entry fails open: `Number('')` is 0, so a typo like
 * `10.0.0.5/` would become a /0, every address, and turn the guard off for every client that
 * shares it (registries, forges, notifiers, the server's config). A /0 written on purpose is
 * refused too: allowing every address is not turning an exception on, it is removing the guard.
 * So are, each as USAGE naming the entry:
 * - host bits set (`10.0.0.1/1`, a typo for /31, is 0.0.0.0/1: half the IPv4 internet);
 * - prefixes shorter than /8 (IPv4) or /16 (IPv6), but for the whole of fc00::/7, fd00::/8 and
 *   fe80::/10: `0.0.0.0/1` and `128.0.0.0/1` together are /0;
 * - 0.0.0.0/8 and `::`, which reach this machine's loopback;
 * - an IPv6 range holding the IPv4-mapped range `::ffff:0:0/96` or `::1` without being exactly
 *   one of them: node's BlockList checks an IPv4 address against IPv6 ranges as `::ffff:a.b.c.d`,
 *   so `::/80` (or `::/8`, `::/1`) allowed 127.0.0.1, 169.254.169.254 and every other IPv4
 *   address. An entry inside `::ffff:0:0/96` is taken as the IPv4 entry it maps (prefix − 96) and
 *   judged as one.
 */
function parseAllowedAddress(entry: string): { addr: string; family: 'ipv4' | 'ipv6'; prefix?: number } {
  const text = entry.trim();
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const fam = isIP(addr);
  if (fam === 0) throw new CtError('USAGE', `allowed address ${JSON.stringify(entry)} is not an IP address or CIDR range`, { entry });
  let family: 'ipv4' | 'ipv6' = fam === 4 ? 'ipv4' : 'ipv6';
  const max = fam === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const bits = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) {
      throw new CtError('USAGE', `allowed address ${JSON.stringify(entry)}: the prefix length after "/" must be a number from 1 to ${max}`, { entry });
    }
    prefix = Number(bits);
  }
  if (prefix === 0) {
    throw new CtError('USAGE', `allowed address ${JSON.stringify(entry)} would allow every ${family === 'ipv4' ? 'IPv4' : 'IPv6'} address, which turns the address guard off: list the addresses or ranges meant (e.g. 10.0.0.0/8)`, { entry });
  }
  let value = family === 'ipv4' ? v4Value(addr) : v6Value(addr);
  const width = family === 'ipv4' ? 32 : 128;
  const hostMask = (1n << BigInt(width - prefix)) - 1n;
  if ((value & hostMask) !== 0n) {
    const network = `${formatAddress(value & ~hostMask, family)}/${prefix}`;
    throw new CtError('USAGE', `allowed address ${JSON.stringify(entry)} has host bits set: as a range it is ${network}; write the network meant (its address with the host bits zero, e.g. ${network}, or a longer prefix) or ${formatAddress(value, family)} alone for one address`, { entry, network });
  }
  // IPv4-mapped: the IPv4 entry it stands for, judged as one (node's BlockList does the same to addresses).
  if (family === 'ipv6' && prefix >= 96 && value >> 32n === 0xffffn) {
    family = 'ipv4';
    value &= 0xffffffffn;
    prefix -= 96;
    if (prefix === 0) throw new CtError('USAGE', `allowed address ${JSON.stringify(entry)} is the IPv4-mapped range, every IPv4 address, which turns the address guard off: list the addresses or ranges meant (e.g. 10.0.0.0/8)`, { entry });
  }
  // 0.0.0.0/8 and `::` read as "nothing", but connecting to them reaches this machine's loopback.
  if ((family === 'ipv4' && prefix >= 8 && value >> 24n === 0n) || (family === 'ipv6' && prefix === 128 && value === 0n)) {
    throw new CtError('USAGE', `allowed address ${JSON.stringify(entry)}: a connection to ${family === 'ipv4' ? '0.0.0.0' : '::'} reaches this machine's loopback services; write 127.0.0.1 or ::1 if that is meant`, { entry });
  }
  // The IPv6 private and link-local ranges whole are what an operator writes for "our networks".
  const wholeLocalV6 = family === 'ipv6' && ((prefix === 7 && value === 0xfcn << 120n) || (prefix === 8 && value === 0xfdn << 120n) || (prefix === 10 && value === 0xfe80n << 112n));
  if (prefix < MIN_PREFIX[family] && !wholeLocalV6) {
    throw new CtError('USAGE', `allowed address ${JSON.stringify(entry)}: a prefix shorter than /${MIN_PREFIX[family]} allows too much of the ${family === 'ipv4' ? 'IPv4' : 'IPv6'} space; the guard's exceptions name private networks or single addresses (e.g. ${family === 'ipv4' ? '10.0.0.0/8' : 'fd12:3456:789a::/48'})`, { entry });
  }
  if (family === 'ipv6' && prefix < 128) {
    const holds = (a: bigint, p: number): boolean => p >= prefix && (a >> BigInt(128 - prefix)) === value >> BigInt(128 - prefix);
    const inside = holds(0xffffn << 32n, 96) ? '::ffff:0:0/96 (every IPv4 address, as node checks IPv4 against IPv6 ranges)' : holds(1n, 128) ? '::1 (loopback)' : undefined;
    if (inside) throw new CtError('USAGE', `allowed address ${JSON.stringify(entry)} holds ${inside}: allow the IPv4 or IPv6 addresses meant on their own (e.g. 127.0.0.1, ::1, 10.0.0.0/8)`, { entry });
  }
  const addrOut = formatAddress(value, family);
  return prefix === (family === 'ipv4' ? 32 : 128) ? { addr: addrOut, family } : { addr: addrOut, family, prefix };
}

function v4Value(addr: string): bigint {
  return addr.split('.').reduce((v, part) => (v << 8n) | BigInt(Number(part)), 0n);
}

/** A valid IPv6 address (isIP 6) as 128 bits, an embedded dotted IPv4 tail included. */
function v6Value(addr: string): bigint {
  let text = addr.replace(/%.*$/, '');
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v = Number(v4Value(dotted[1]));
    text = `${text.slice(0, dotted.index)}${(v >>> 16).toString(16)}:${(v & 0xffff).toString(16)}`;
  }
  const [head, tail] = text.split('::');
  const groups = (s: string | undefined): string[] => (s ? s.split(':') : []);
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return all.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function formatAddress(value: bigint, family: 'ipv4' | 'ipv6'): string {
  if (family === 'ipv4') return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 255n)).join('.');
  const groups = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((value >> s) & 0xffffn).toString(16));
  // The URL parser writes the canonical (compressed) form.
  return new URL(`http://[${groups.join(':')}]`).hostname.slice(1, -1);
}

function splitHostPort(s: string): { host: string; port?: string } {
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    const port = s.slice(close + 1).replace(/^:/, '');
    return { host: s.slice(1, close), port: port || undefined };
  }
  const c = s.lastIndexOf(':');
  if (c >= 0 && s.indexOf(':') === c) return { host: s.slice(0, c), port: s.slice(c + 1) };
  return { host: s };
}
