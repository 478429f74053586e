import { execFile, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';

/**
 * What the egress tests probe from inside a network namespace (a container's, as runc would run
 * its processes there), and the "outside" they probe: a namespace of its own behind a veth, routed
 * by the host like the Internet would be (what `any` masquerades to).
 */

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** `wget` from inside a namespace; what it fetched, or `blocked` when it could not within 3 s (busybox 1.35's `wget -T` crashes). */
export function fetchIn(ns: string, url: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, 'timeout', '3', 'busybox', 'wget', '-q', '-O', '-', url], { encoding: 'utf8', timeout: 10_000 }, (err, stdout) =>
      resolve(err ? 'blocked' : stdout.trim()));
  });
}

/** Until every `fetch` answers (at most 5 s): listeners started in the background are up before anything is judged. */
export async function untilAnswering(fetches: (() => Promise<string>)[]): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const ok = await Promise.all(fetches.map((f) => f()));
    if (ok.every((x) => x !== 'blocked')) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * From inside a namespace: one DNS query for `name` (type A) to server:53 over UDP, `answered` when
 * any reply came within 2 s, else `silent`; over TCP, `connected` or `silent`.
 */
export function ask(ns: string, server: string, name: string, proto: 'udp' | 'tcp' = 'udp'): Promise<string> {
  const script = proto === 'udp'
    ? `const q=Buffer.concat([Buffer.from([0x12,0x34,1,0,0,1,0,0,0,0,0,0]),...${JSON.stringify(name)}.split('.').map((l)=>Buffer.concat([Buffer.from([l.length]),Buffer.from(l)])),Buffer.from([0,0,1,0,1])]);
       const s=require('dgram').createSocket('udp4');s.on('message',()=>{console.log('answered');process.exit(0)});
       s.send(q,53,${JSON.stringify(server)});setTimeout(()=>{console.log('silent');process.exit(0)},2000)`
    : `const c=require('net').connect(53,${JSON.stringify(server)},()=>{console.log('connected');process.exit(0)});c.on('error',()=>{});
       setTimeout(()=>{console.log('silent');process.exit(0)},2000)`;
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: 10_000 }, (err, stdout) => resolve(err ? `failed: ${err.message}` : stdout.trim()));
  });
}

/** The outside: namespace `ns` behind the host's veth `hostIf`, `host` its host-side address and `addr` its own (a /30). */
export interface Outside {
  ns: string;
  hostIf: string;
  host: string;
  addr: string;
}

export function makeOutside(o: Outside): void {
  ip('netns', 'add', o.ns);
  ip('link', 'add', o.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', o.ns);
  ip('addr', 'add', `${o.host}/30`, 'dev', o.hostIf);
  ip('link', 'set', o.hostIf, 'up');
  ip('-n', o.ns, 'addr', 'add', `${o.addr}/30`, 'dev', 'eth0');
  ip('-n', o.ns, 'link', 'set', 'eth0', 'up');
  ip('-n', o.ns, 'link', 'set', 'lo', 'up');
  ip('-n', o.ns, 'route', 'add', 'default', 'via', o.host);
}

export function removeOutside(o: Outside): void {
  try {
    ip('link', 'delete', o.hostIf);
  } catch {
    // already gone with its namespace
  }
  try {
    ip('netns', 'delete', o.ns);
  } catch {
    // never made
  }
}

/**
 * In a namespace: prints `ready` once it listens on eth0 (every frame, either way), then the tag of
 * every frame carrying `CTMARK-<tag>` (once each), and exits a second after it saw `last` or after 10 s.
 */
const SNIFF = `import re, socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0003)); s.bind(('eth0', 0)); s.settimeout(0.2)
print('ready', flush=True)
seen, end = set(), time.time() + 10
while time.time() < end:
    try: p = s.recv(65535)
    except socket.timeout: continue
    for m in re.findall(rb'CTMARK-([A-Z0-9-]+)', p):
        if m not in seen: seen.add(m); print(m.decode(), flush=True)
        if m.decode() == sys.argv[1]: end = min(end, time.time() + 1)`;

/**
 * The tags (sorted) a sniffer in namespace `ns` saw while `write` ran. `last` is the tag of the
 * control, written last: what must arrive, and shows the sniffer saw what came before it.
 */
export async function sniffed(ns: string, last: string, write: () => void): Promise<string[]> {
  const sniffer = spawn('ip', ['netns', 'exec', ns, 'python3', '-c', SNIFF, last], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    sniffer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = once(sniffer, 'exit');
    for (let i = 0; i < 100 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50));
    if (!out.includes('ready')) throw new Error(`the sniffer in ${ns} did not start`);
    write();
    await exited;
    return out.split('\n').filter((l) => l && l !== 'ready').sort();
  } finally {
    sniffer.kill('SIGKILL');
  }
}

/** Writes UDP frames (`<dst mac>:<src mac>:<src ip>:<dst ip>:<tag>`, MACs with `-`) on a device of the namespace with a packet socket. */
const FRAMES = `import socket, struct, sys
def mac(m): return bytes.fromhex(m.replace('-', ''))
def csum(b):
    b += b'\\0' * (len(b) % 2)
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); s.bind((sys.argv[1], 0))
for a in sys.argv[2:]:
    dst, src, sip, dip, tag = a.split(':')
    data = ('CTMARK-%s' % tag).encode()
    udp = struct.pack('!HHHH', 40000, 9999, 8 + len(data), 0) + data
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(sip), socket.inet_aton(dip))
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    s.send(mac(dst) + mac(src) + b'\\x08\\x00' + h + udp)
`;

/** Writes the frames (FRAMES) on a device of the namespace: a container with CAP_NET_RAW. */
export function sendFrames(ns: string, dev: string, ...frames: string[]): void {
  execFileSync('ip', ['netns', 'exec', ns, 'python3', '-c', FRAMES, dev, ...frames], { stdio: ['ignore', 'pipe', 'pipe'] });
}
