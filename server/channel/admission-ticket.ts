import { createHmac, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';

/**
 * Admission tickets of the host channel. Before its hello a connection is anyone's: a flood from a
 * host's own address (a NAT, a proxy, a cloud /64), naming that host's id, held every pending place
 * at every instant and made the host's way in a lottery (tens of seconds). A host that has
 * authenticated is given a ticket in its `welcome`; it presents it in its next upgrade request
 * (`x-ct-admission`) and gets one of the few places kept for that host id
 * (pending-handshakes.ts), which a flood without the ticket cannot take, whether or not it knows
 * the id. The ticket is an HMAC over the host id and an expiry, checked before anything is
 * allocated (microseconds, no database read), under a key derived from the server's channel key:
 * every replica sharing that key accepts it, and a new server key voids every ticket (the hosts
 * then wait for an ordinary place once, and are given a new ticket). It proves nothing more than
 * "this server welcomed this host id within TICKET_TTL_MS": the handshake still authenticates.
 */
export const ADMISSION_HEADER = 'x-ct-admission';

/** 30 days: an agent keeps its ticket in memory, renewed at each welcome. */
export const TICKET_TTL_MS = 30 * 24 * 3600 * 1000;

/** `<expiry, unix seconds>.<base64url HMAC-SHA256>`: bounded before anything is computed. */
const TICKET_RE = /^([0-9]{10})\.([A-Za-z0-9_-]{43})$/;

export class AdmissionTickets {
  private readonly key: Buffer;

  constructor(serverKey: KeyObject, private readonly now: () => number = Date.now) {
    const der = serverKey.export({ type: 'pkcs8', format: 'der' });
    this.key = Buffer.from(hkdfSync('sha256', der, Buffer.alloc(0), 'cerro-torre channel admission ticket v1', 32));
  }

  /** A ticket for a host that has just authenticated. */
  issue(hostId: string): string {
    const exp = String(Math.floor((this.now() + TICKET_TTL_MS) / 1000));
    return `${exp}.${this.mac(hostId, exp).toString('base64url')}`;
  }

  /** Whether `ticket` (the header, as the client sent it: anything) is this server's for `hostId` and still valid. */
  valid(ticket: unknown, hostId: string): boolean {
    if (typeof ticket !== 'string' || ticket.length > 64) return false;
    const m = TICKET_RE.exec(ticket);
    if (!m) return false;
    const expMs = Number(m[1]) * 1000;
    const now = this.now();
    // No bound ahead: the expiry is under the MAC (only a holder of the server key sets it), and one
    // there refused the tickets of a replica whose clock ran a minute ahead of this one's.
    if (expMs <= now) return false;
    const given = Buffer.from(m[2], 'base64url');
    return given.length === 32 && timingSafeEqual(given, this.mac(hostId, m[1]));
  }

  private mac(hostId: string, exp: string): Buffer {
    return createHmac('sha256', this.key).update(`${hostId}\n${exp}`).digest();
  }
}
