import { isIPv4, isIPv6 } from 'node:net';
import type { Duplex } from 'node:stream';
import { MAX_HANDSHAKE_BYTES } from '../../src/protocol/handshake.js';
import { HOST_CHANNEL_DEFAULTS, type HostChannelLimits } from './limits.js';

/**
 * Bytes a client may send before it is authenticated: its hello (at most MAX_HANDSHAKE_BYTES) with
 * its WebSocket framing and a few control frames. The channel's frames may be 1 MiB (an
 * inventory), and ws buffers a frame until it is whole: without this an unauthenticated client
 * held that much of the server's memory per connection.
 */
export const MAX_PRE_AUTH_BYTES = MAX_HANDSHAKE_BYTES + 4096;

/**
 * What limits are counted per: the address, and for IPv6 its /64 (one machine is commonly given
 * a whole /64, so a per-address limit on full IPv6 addresses would bound nothing).
 */
export function addressKey(address: string | undefined): string {
  if (!address) return '';
  const mapped = address.toLowerCase().startsWith('::ffff:') ? address.slice(7) : address;
  if (isIPv4(mapped)) return mapped;
  const bare = address.split('%')[0];
  if (!isIPv6(bare)) return address.slice(0, 64);
  const groups = (s: string) => (s ? s.split(':').flatMap((g) => (g.includes('.') ? ['0', '0'] : [g])) : []);
  const [head, tail] = bare.split('::');
  const h = groups(head);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - groups(tail).length).fill('0'), ...groups(tail)];
  return `${all.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(':')}::/64`;
}

interface Entry {
  socket: Duplex;
  key: string;
  timer?: NodeJS.Timeout;
  bytes: number;
  done: boolean;
  onData?: (chunk: Buffer) => void;
}

/** One connection on its way to being authenticated (PendingHandshakes.admit). */
export interface PendingHandshake {
  /** Counts what the client sends from now on; past MAX_PRE_AUTH_BYTES the socket is destroyed. */
  watch(): void;
  /**
   * The host authenticated: the connection leaves the pending ones. False when it had already
   * been dropped (deadline, eviction, closed): the caller must not take it as a host's channel.
   */
  authenticated(): boolean;
}

/**
 * The host channel's connections that have not authenticated yet (from the upgrade to an
 * accepted hello). Anyone can open one and hold it (a handshake costs the server a database read,
 * a signature, a WebSocket and its buffers), so they are bounded: each is destroyed at its deadline
 * (`handshakeMs`), and there are at most `maxPending` of them, at most `maxPendingPerAddress` from
 * one address. A new connection over a limit drops the OLDEST pending one under it rather than
 * being refused: a real host completes its handshake within a round trip, so connections held
 * open by an attacker are always the oldest, and holding them can never keep a host (its id named
 * by the attacker or not) from connecting; to get in the way the attacker has to open more
 * connections than the limit within one of the host's round trips, and still holds no more than
 * the limit. An established channel is never touched here: only an accepted hello replaces it.
 */
export class PendingHandshakes {
  /** Every pending connection, oldest first (a Set keeps insertion order). */
  private readonly all = new Set<Entry>();
  private readonly byKey = new Map<string, Set<Entry>>();
  private readonly limits: Required<Pick<HostChannelLimits, 'maxPending' | 'maxPendingPerAddress' | 'handshakeMs'>>;
  /** Connections dropped to make room for newer ones (a metric for tests and logs). */
  evicted = 0;

  constructor(limits: HostChannelLimits = {}) {
    this.limits = {
      maxPending: limits.maxPending ?? HOST_CHANNEL_DEFAULTS.maxPending,
      maxPendingPerAddress: limits.maxPendingPerAddress ?? HOST_CHANNEL_DEFAULTS.maxPendingPerAddress,
      handshakeMs: limits.handshakeMs ?? HOST_CHANNEL_DEFAULTS.handshakeMs,
    };
  }

  get size(): number {
    return this.all.size;
  }

  /** A new connection, before its upgrade: counted, given its deadline, room made for it. */
  admit(socket: Duplex, address: string | undefined): PendingHandshake {
    const key = addressKey(address);
    const same = this.byKey.get(key) ?? new Set<Entry>();
    while (same.size >= this.limits.maxPendingPerAddress) this.evict(same.values().next().value!);
    while (this.all.size >= this.limits.maxPending) this.evict(this.all.values().next().value!);
    const e: Entry = { socket, key, bytes: 0, done: false };
    this.all.add(e);
    same.add(e);
    this.byKey.set(key, same);
    // Destroyed, not closed: a WebSocket close waits up to 30 s for the peer's answer, which a
    // hostile peer never sends.
    e.timer = setTimeout(() => this.drop(e), this.limits.handshakeMs);
    e.timer.unref();
    socket.once('close', () => this.release(e));
    return {
      watch: () => {
        if (e.done) return;
        e.onData = (chunk: Buffer) => {
          e.bytes += chunk.length;
          if (e.bytes > MAX_PRE_AUTH_BYTES) this.drop(e);
        };
        socket.on('data', e.onData);
      },
      authenticated: () => {
        if (e.done || socket.destroyed) return false;
        this.release(e);
        return true;
      },
    };
  }

  /** Every pending connection destroyed (the server stops). */
  closeAll(): void {
    for (const e of [...this.all]) this.drop(e);
  }

  private evict(e: Entry): void {
    this.evicted++;
    this.drop(e);
  }

  private drop(e: Entry): void {
    this.release(e);
    e.socket.destroy();
  }

  private release(e: Entry): void {
    if (e.done) return;
    e.done = true;
    clearTimeout(e.timer);
    if (e.onData) e.socket.off('data', e.onData);
    this.all.delete(e);
    const same = this.byKey.get(e.key);
    same?.delete(e);
    if (same?.size === 0) this.byKey.delete(e.key);
  }
}
