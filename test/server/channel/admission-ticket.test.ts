/**
 * Admission tickets (server/channel/admission-ticket.ts): only this server's, for this host id,
 * unexpired, and anything else a client may put in the header is no ticket.
 */
import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { AdmissionTickets, TICKET_TTL_MS } from '../../../server/channel/admission-ticket.js';

const HOST = '00000000-0000-4000-8000-000000000001';
const OTHER = '00000000-0000-4000-8000-000000000002';

describe('admission tickets', () => {
  const key = generateKeyPairSync('ed25519').privateKey;
  let now = 1_800_000_000_000;
  const tickets = new AdmissionTickets(key, () => now);

  it('accept a ticket of this server for the host it names, until it expires', () => {
    const t = tickets.issue(HOST);
    expect(t).toMatch(/^[0-9]{10}\.[A-Za-z0-9_-]{43}$/);
    expect(tickets.valid(t, HOST)).toBe(true);
    // Every replica with the same server key accepts it.
    expect(new AdmissionTickets(key, () => now).valid(t, HOST)).toBe(true);
    const issued = now;
    now = issued + TICKET_TTL_MS - 1_000;
    expect(tickets.valid(t, HOST)).toBe(true);
    now = issued + TICKET_TTL_MS;
    expect(tickets.valid(t, HOST)).toBe(false);
    now = issued;
  });

  it('accept the ticket of a replica whose clock runs ahead (the expiry is under the MAC)', () => {
    const ahead = new AdmissionTickets(key, () => now + 10 * 60_000);
    // Before: refused past a minute of skew, and the host waited for an ordinary place.
    expect(tickets.valid(ahead.issue(HOST), HOST)).toBe(true);
  });

  it('refuse another host\'s ticket, another key\'s, a changed one and anything that is not a ticket', () => {
    const t = tickets.issue(HOST);
    expect(tickets.valid(t, OTHER)).toBe(false);
    expect(new AdmissionTickets(generateKeyPairSync('ed25519').privateKey, () => now).valid(t, HOST)).toBe(false);
    const [exp, mac] = t.split('.');
    // A later expiry with the same MAC, a changed MAC, and the latest expiry with this MAC.
    expect(tickets.valid(`${Number(exp) + 1}.${mac}`, HOST)).toBe(false);
    expect(tickets.valid(`${exp}.${mac[0] === 'A' ? 'B' : 'A'}${mac.slice(1)}`, HOST)).toBe(false);
    for (const bad of [undefined, '', 42, ['a', 'b'], `${t}, ${t}`, `${t}x`, ` ${t}`, 'x'.repeat(100_000), `${exp}.${mac}=`, `9999999999.${mac}`]) {
      expect(tickets.valid(bad, HOST)).toBe(false);
    }
  });
});
