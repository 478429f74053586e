import { readdir, readFile } from 'node:fs/promises';
import type { HostPort } from './anti-spoofing.js';

const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * The ports of a bridge as the kernel has them now (`/sys/class/net/<bridge>/brif`, no process),
 * each with its ifindex: the kernel never gives a live link's index to another, so a recorded
 * port is found by it whatever its name is now. A bridge that is not there has none. A port whose
 * index cannot be read (it went meanwhile) is listed with index 0: it matches no record, and so
 * is sealed (anti-spoofing.ts) like any port no guard accounts for. The kernel bounds the listing
 * (a bridge has at most 1024 ports, BR_MAX_PORTS).
 */
export async function bridgePorts(bridge: string): Promise<HostPort[]> {
  if (!IFNAME.test(bridge)) return [];
  let names: string[];
  try {
    names = (await readdir(`/sys/class/net/${bridge}/brif`)).filter((n) => IFNAME.test(n));
  } catch {
    return [];
  }
  return Promise.all(names.map(async (port) => {
    const index = await readFile(`/sys/class/net/${port}/ifindex`, 'utf8').then((s) => Number(s.trim()), () => 0);
    return { port, ifindex: Number.isSafeInteger(index) ? index : 0 };
  }));
}
