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
 * Pending places kept per host id for upgrades with that host's admission ticket: the agent opens
 * one channel at a time, so two leave room for a new attempt while a stale one (its network
 * dropped mid-handshake) is still younger than the minimum age.
 */
export const RESERVED_PER_HOST = 2;

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
  /** The places it holds: its address's (byKey), or those kept for the host id its ticket names (byHost). */
  pool: Map<string, Set<Entry>>;
  /** When it was admitted (performance.now()): younger than minAgeMs it is not evicted. */
  at: number;
  timer?: NodeJS.Timeout;
  bytes: number;
  done: boolean;
  onData?: (chunk: Buffer) => void;
}

/** One connection on its way to being authenticated (PendingHandshakes.admit). */
export interface PendingHandshake {
  /**
   * Counts what the client sends from now on, after `already` bytes it sent with its upgrade
   * request (`head`); past MAX_PRE_AUTH_BYTES the socket is destroyed.
   */
  watch(already?: number): void;
  /**
   * The host authenticated: the connection leaves the pending ones. False when it had already
   * been dropped (deadline, eviction, closed): the caller must not take it as a host's channel.
   */
  authenticated(): boolean;
  /**
   * The connection is refused (unknown host): whatever was written to it (a close frame) is sent,
   * then the socket is destroyed, without waiting for the peer's answer to a WebSocket close (ws
   * waits 30 s for it, which a hostile peer never sends), and it no longer counts.
   */
  refuse(): void;
}

/**
 * The host channel's connections that have not authenticated yet (from the upgrade to an
 * accepted hello). Anyone can open one and hold it (a handshake costs the server a database read,
 * a signature, a WebSocket and its buffers), so they are bounded: each is destroyed at its deadline
 * (`handshakeMs`), and there are at most `maxPending` of them, at most `maxPendingPerAddress` from
 * one address (an IPv6 /64).
 *
 * A new connection over a limit drops an older pending one, but only one at least `minAgeMs` old
 * (min(2 s, handshakeMs / 4)); when none is, the NEW connection is refused. Dropping the oldest
 * whatever its age let one address that opened more connections than the limit within a host's
 * round trip evict that host's handshake every time, for as long as it kept flooding (behind a
 * proxy, a NAT or in a cloud IPv6 /64 the attacker and the hosts share that address): now a
 * handshake that got a place keeps it for minAgeMs, longer than a host needs to finish, so a
 * flood can only take free places, never one a host is using. Over `maxPending` the connection
 * dropped is the oldest of the address holding the most, so one address flooding cannot push out
 * the others' handshakes. An established channel is never touched here: only an accepted hello
 * replaces it.
 */
export class PendingHandshakes {
  /** Every pending connection without a ticket, oldest first (a Set keeps insertion order). */
  private readonly all = new Set<Entry>();
  /** Per address, oldest first. */
  private readonly byKey = new Map<string, Set<Entry>>();
  /** Connections with a valid ticket, per host id, oldest first: at most RESERVED_PER_HOST each. */
  private readonly byHost = new Map<string, Set<Entry>>();
  private readonly limits: Required<Pick<HostChannelLimits, 'maxPending' | 'maxPendingPerAddress' | 'handshakeMs'>>;
  private readonly minAgeMs: number;
  /** Connections dropped to make room for newer ones (a metric for tests and logs). */
  evicted = 0;
  /** New connections refused because every one they could replace was younger than minAgeMs. */
  refused = 0;

  constructor(limits: HostChannelLimits = {}, private readonly now: () => number = () => performance.now()) {
    this.limits = {
      maxPending: limits.maxPending ?? HOST_CHANNEL_DEFAULTS.maxPending,
      maxPendingPerAddress: limits.maxPendingPerAddress ?? HOST_CHANNEL_DEFAULTS.maxPendingPerAddress,
      handshakeMs: limits.handshakeMs ?? HOST_CHANNEL_DEFAULTS.handshakeMs,
    };
    this.minAgeMs = Math.min(2_000, this.limits.handshakeMs / 4);
  }

  get size(): number {
    let n = this.all.size;
    for (const s of this.byHost.values()) n += s.size;
    return n;
  }

  /**
   * A new connection, before its upgrade: counted, given its deadline, room made for it; or,
   * when no room can be made, destroyed and undefined returned. `ticketFor`: the host id whose
   * valid admission ticket the upgrade carried (the caller checked it): one of that host's places.
   */
  admit(socket: Duplex, address: string | undefined, ticketFor?: string): PendingHandshake | undefined {
    let e: Entry;
    if (ticketFor !== undefined) {
      const same = this.byHost.get(ticketFor);
      // Only the host (or whoever holds its ticket) gets here: an older attempt of its own that
      // is past the minimum age makes room (the agent opens one channel at a time).
      if (same && same.size >= RESERVED_PER_HOST && !this.evictOldest(same)) return this.refuse(socket);
      e = this.add(socket, ticketFor, this.byHost);
    } else {
      const key = addressKey(address);
      const same = this.byKey.get(key);
      if (same && same.size >= this.limits.maxPendingPerAddress && !this.evictOldest(same)) return this.refuse(socket);
      if (this.all.size >= this.limits.maxPending && !this.evictOldest(this.largest())) return this.refuse(socket);
      e = this.add(socket, key, this.byKey);
      this.all.add(e);
    }
    // Destroyed, not closed: a WebSocket close waits up to 30 s for the peer's answer, which a
    // hostile peer never sends.
    e.timer = setTimeout(() => this.drop(e), this.limits.handshakeMs);
    e.timer.unref();
    socket.once('close', () => this.release(e));
    return {
      watch: (already = 0) => {
        if (e.done) return;
        e.bytes = already;
        if (e.bytes > MAX_PRE_AUTH_BYTES) return this.drop(e);
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
      refuse: () => {
        this.release(e);
        // end() flushes what was written (the close frame) and then the socket is destroyed; a
        // peer that reads nothing does not hold it past a second.
        socket.once('finish', () => socket.destroy());
        setTimeout(() => socket.destroy(), 1_000).unref();
        socket.end();
      },
    };
  }

  /** Every pending connection destroyed (the server stops). */
  closeAll(): void {
    for (const e of [...this.all]) this.drop(e);
    for (const s of [...this.byHost.values()]) for (const e of [...s]) this.drop(e);
  }

  private add(socket: Duplex, key: string, pool: Map<string, Set<Entry>>): Entry {
    const e: Entry = { socket, key, pool, at: this.now(), bytes: 0, done: false };
    const set = pool.get(key) ?? new Set<Entry>();
    set.add(e);
    pool.set(key, set);
    return e;
  }

  private refuse(socket: Duplex): undefined {
    this.refused++;
    socket.destroy();
    return undefined;
  }

  /** The pending connections of the address holding the most (at most maxPending addresses to look at). */
  private largest(): Set<Entry> | undefined {
    let top: Set<Entry> | undefined;
    for (const s of this.byKey.values()) if (!top || s.size > top.size) top = s;
    return top;
  }

  /** Drops the oldest of `set` when it is at least minAgeMs old; false when it is younger (or there is none). */
  private evictOldest(set: Set<Entry> | undefined): boolean {
    const oldest = set?.values().next().value;
    if (!oldest || this.now() - oldest.at < this.minAgeMs) return false;
    this.evicted++;
    this.drop(oldest);
    return true;
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
    const same = e.pool.get(e.key);
    same?.delete(e);
    if (same?.size === 0) e.pool.delete(e.key);
  }
}
