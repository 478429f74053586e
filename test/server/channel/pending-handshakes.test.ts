/**
 * PendingHandshakes (server/channel/pending-handshakes.ts) on its own, with a clock of the test's:
 * which connection a new one over a limit drops, and when it is the new one that is refused.
 */
import { describe, expect, it } from '@jest/globals';
import { PassThrough } from 'node:stream';
import { PendingHandshakes, RESERVED_PER_HOST } from '../../../server/channel/pending-handshakes.js';

describe('pending handshakes over a limit', () => {
  let t = 0;
  const clock = () => t;
  const sock = () => new PassThrough();

  it('never drop a handshake younger than the minimum age: the new connection is refused instead', () => {
    t = 0;
    const p = new PendingHandshakes({ maxPending: 1000, maxPendingPerAddress: 4, handshakeMs: 10_000 }, clock);
    // The real host's handshake, then a flood from the same address (a proxy, a NAT) within its round trip.
    const host = sock();
    const handle = p.admit(host, '203.0.113.9')!;
    const flood = Array.from({ length: 200 }, () => sock());
    for (const s of flood) {
      t += 1;
      p.admit(s, '203.0.113.9');
    }
    // Before: each connection over the limit dropped the oldest, the host's first of all.
    expect(host.destroyed).toBe(false);
    expect(handle.authenticated()).toBe(true);
    expect(flood.filter((s) => !s.destroyed)).toHaveLength(3);
    expect(p.evicted).toBe(0);
    expect(p.refused).toBe(197);
  });

  it('drop the oldest once it is at least min(2 s, handshakeMs / 4) old', () => {
    t = 0;
    const p = new PendingHandshakes({ maxPending: 1000, maxPendingPerAddress: 2, handshakeMs: 4_000 }, clock);
    const [a, b, c, d] = [sock(), sock(), sock(), sock()];
    p.admit(a, '198.51.100.1');
    t = 500;
    p.admit(b, '198.51.100.1');
    t = 999;
    expect(p.admit(c, '198.51.100.1')).toBeUndefined();
    expect([a.destroyed, b.destroyed, c.destroyed]).toEqual([false, false, true]);
    t = 1_000;
    expect(p.admit(d, '198.51.100.1')).toBeDefined();
    expect([a.destroyed, b.destroyed, d.destroyed]).toEqual([true, false, false]);
  });

  it('over maxPending, drop from the address holding the most, not the oldest overall', () => {
    t = 0;
    const p = new PendingHandshakes({ maxPending: 6, maxPendingPerAddress: 100, handshakeMs: 10_000 }, clock);
    const others = [sock(), sock()];
    p.admit(others[0], '192.0.2.1');
    p.admit(others[1], '2001:db8:1:2::7');
    t = 100;
    const flood = Array.from({ length: 4 }, () => sock());
    for (const s of flood) p.admit(s, '192.0.2.66');
    t = 5_000;
    for (let i = 0; i < 3; i++) expect(p.admit(sock(), '198.51.100.5')).toBeDefined();
    // The flooding address lost its three oldest; the other addresses' handshakes stay.
    expect(others.every((s) => !s.destroyed)).toBe(true);
    expect(flood.map((s) => s.destroyed)).toEqual([true, true, true, false]);
    expect(p.size).toBe(6);
  });

  it('count what came with the upgrade request toward the bytes allowed before the hello', () => {
    const p = new PendingHandshakes({}, clock);
    const s = sock();
    p.admit(s, '192.0.2.1')!.watch(70 * 1024);
    expect(s.destroyed).toBe(true);
    expect(p.size).toBe(0);
  });

  it('keep RESERVED_PER_HOST places per host id for upgrades with its ticket, out of the address\'s and the global count', () => {
    t = 0;
    const p = new PendingHandshakes({ maxPending: 4, maxPendingPerAddress: 4, handshakeMs: 10_000 }, clock);
    const host = '00000000-0000-4000-8000-00000000000a';
    // A flood from the host's address holds every ordinary place, all younger than the minimum age.
    const flood = Array.from({ length: 4 }, () => sock());
    for (const s of flood) p.admit(s, '203.0.113.9');
    expect(p.admit(sock(), '203.0.113.9')).toBeUndefined();
    // Before: a ticket changed nothing, the host was refused like the flood.
    const [a, b, c] = [sock(), sock(), sock()];
    expect(p.admit(a, '203.0.113.9', host)).toBeDefined();
    expect(p.admit(b, '203.0.113.9', host)).toBeDefined();
    expect(RESERVED_PER_HOST).toBe(2);
    // A third with the ticket within the minimum age is refused; it takes no ordinary place either.
    expect(p.admit(c, '203.0.113.9', host)).toBeUndefined();
    expect(c.destroyed).toBe(true);
    // Another host's ticket has places of its own; the flood lost nothing.
    expect(p.admit(sock(), '203.0.113.9', '00000000-0000-4000-8000-00000000000b')).toBeDefined();
    expect(flood.every((s) => !s.destroyed)).toBe(true);
    expect(p.size).toBe(7);
    // Past the minimum age, a new attempt with the ticket replaces the host's oldest (a stale one).
    t = 2_000;
    const d = sock();
    expect(p.admit(d, '203.0.113.9', host)).toBeDefined();
    expect([a.destroyed, b.destroyed, d.destroyed]).toEqual([true, false, false]);
    // The flood cannot reach them: over its limit it replaces its own.
    expect(p.admit(sock(), '203.0.113.9')).toBeDefined();
    expect(b.destroyed).toBe(false);
    p.closeAll();
    expect([b.destroyed, d.destroyed]).toEqual([true, true]);
    expect(p.size).toBe(0);
  });
});
