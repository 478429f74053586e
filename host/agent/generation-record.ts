import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, write } from 'node:fs';
import { join } from 'node:path';
import { asIoError, CtError } from '../../src/core/errors.js';
import { writeFileAtomic } from '../../src/core/fs.js';

/**
 * The highest assignment generation this host accepted, saved durably before the host acts on the
 * assignment (docs/host-protocol.md "Assignments and generations"): what keeps a restarted host
 * from being downgraded by a replayed assignment.
 *
 * It is saved at every assignment, so it is a file of two fixed-size slots kept open, not a file
 * replaced each time: a save writes the slot that does NOT hold the newest record, durably (one
 * write, where a temporary file, write, fsync, close and rename cost four times the CPU and a
 * directory change per assignment; #14 target 8). A crash in the middle of a save leaves the other
 * slot, the last one synced, intact.
 *
 * The file is kept open with O_DSYNC: each write returns once its data (and the metadata needed
 * to read it back) is on the disk, the guarantee of a write followed by fdatasync (POSIX
 * synchronized I/O data integrity completion), in one system call on the thread pool instead of a
 * write on the event loop and then an fdatasync on the thread pool (a save cost ~21 µs of CPU,
 * ~10 µs now, measured on a tmpfs; host/agent is where each of a fleet's hosts pays it). Each slot is
 * `<SHA-256 hex of the rest> {"hostId":…,"generation":…}` padded with spaces (UTF-8 bytes, hashed
 * as stored): a torn or foreign slot fails its hash and is ignored, and a slot of another
 * enrolment (another host id in the same state directory) does not count. The two slots sit in
 * different 4 KiB blocks, so a sector or page torn by a power loss can take at most one of them.
 *
 * Once the record of an enrolment exists (enrolment.json says so), a record with no valid slot —
 * missing, truncated, both slots damaged — stops the agent (HOST_STATE_INVALID): making it again
 * from an older generation would let replayed assignments run. Re-enrolling starts afresh.
 */
const SLOT = 256;
const STRIDE = 4096;
const FILE = 'generation';
/** How the record is kept open: every write synced as it is made (see the top). */
const SYNCED_RW = constants.O_RDWR | constants.O_DSYNC;

function encode(hostId: string, generation: number): Buffer {
  const json = JSON.stringify({ hostId, generation });
  if (Buffer.byteLength(json, 'utf8') > SLOT - 66) throw new CtError('USAGE', 'host id too long for the generation record');
  // One buffer per save (this runs at every assignment): spaces, the record, the hash of the body.
  const slot = Buffer.alloc(SLOT, 0x20);
  slot.write(json, 65, 'utf8');
  slot[SLOT - 1] = 0x0a;
  slot.write(createHash('sha256').update(slot.subarray(65, SLOT - 1)).digest('hex'), 0, 'latin1');
  return slot;
}

/** The generation a slot holds for this host, or undefined (torn, blank, foreign). */
function decode(slot: Buffer, hostId: string): number | undefined {
  if (slot.length !== SLOT) return undefined;
  const body = slot.subarray(65, SLOT - 1);
  if (slot[64] !== 0x20 || slot[SLOT - 1] !== 0x0a || createHash('sha256').update(body).digest('hex') !== slot.toString('latin1', 0, 64)) return undefined;
  try {
    const r = JSON.parse(body.toString('utf8')) as { hostId?: unknown; generation?: unknown };
    return r.hostId === hostId && Number.isSafeInteger(r.generation) && (r.generation as number) >= 0 ? (r.generation as number) : undefined;
  } catch {
    return undefined;
  }
}

/** The file's two slots, or nothing when it is missing or not the record's size (damaged). */
function readSlots(path: string): [Buffer, Buffer] | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw asIoError(e, path);
  }
  try {
    if (fstatSync(fd).size !== 2 * STRIDE) return undefined;
    const slots: [Buffer, Buffer] = [Buffer.alloc(SLOT), Buffer.alloc(SLOT)];
    for (const i of [0, 1]) if (readSync(fd, slots[i], 0, SLOT, i * STRIDE) !== SLOT) return undefined;
    return slots;
  } finally {
    closeSync(fd);
  }
}

export class GenerationRecord {
  private closed = false;
  private saving: Promise<unknown> = Promise.resolve();

  private constructor(private readonly path: string, private readonly fd: number, private readonly hostId: string, private next: 0 | 1, public generation: number) {}

  /**
   * Opens the record of `hostId` in `stateDir`. `established`: this enrolment's record was made
   * before, so it must be there with a valid slot (else HOST_STATE_INVALID). Otherwise (a new
   * enrolment, or the first start after an agent that kept the generation in enrolment.json) it
   * is made, atomically, holding at least `floor`, the generation known otherwise.
   */
  static async open(stateDir: string, hostId: string, floor: number, established = false): Promise<GenerationRecord> {
    const path = join(stateDir, FILE);
    const slots = readSlots(path);
    const held = slots ? slots.map((slot) => decode(slot, hostId)) : [undefined, undefined];
    const newest = held[0] !== undefined && (held[1] === undefined || held[0] >= held[1]) ? 0 : held[1] !== undefined ? 1 : -1;
    if (established && newest === -1) {
      throw new CtError('HOST_STATE_INVALID', `${path}: the accepted generation of host ${hostId} is missing or damaged; the agent will not start without it (a replayed assignment could run). Re-enrol the host to start afresh.`, { path });
    }
    const best = Math.max(established ? 0 : floor, ...held.map((g) => g ?? -1));
    if (!slots || newest === -1 || held[newest]! < best) {
      // Slot 0 holds the record, slot 1 nothing yet. Its directory is synced too (once, at start):
      // a save's fdatasync reaches the file's blocks, not the name, and a record made before
      // enrolment.json says it exists must not vanish in a power loss (HOST_STATE_INVALID).
      const file = Buffer.alloc(2 * STRIDE, 0x20);
      encode(hostId, best).copy(file, 0);
      await writeFileAtomic(path, file, 0o600, { durable: true });
      return new GenerationRecord(path, openSync(path, SYNCED_RW), hostId, 1, best);
    }
    return new GenerationRecord(path, openSync(path, SYNCED_RW), hostId, newest === 0 ? 1 : 0, best);
  }

  /** Saves `generation` durably (resolves once it is on disk); saves run one after the other. */
  save(generation: number): Promise<void> {
    const done = this.saving.then(() => this.write(generation));
    this.saving = done.catch(() => undefined);
    return done;
  }

  private async write(generation: number): Promise<void> {
    if (this.closed) throw new CtError('IO_ERROR', 'the generation record is closed');
    const slot = encode(this.hostId, generation);
    // O_DSYNC (see the top): resolved once the slot is on the disk; the write waits for the disk,
    // so it runs on the thread pool.
    const n = await new Promise<number>((resolve, reject) => write(this.fd, slot, 0, SLOT, this.next * STRIDE, (e, written) => (e ? reject(asIoError(e, this.path)) : resolve(written))));
    if (n !== SLOT) throw new CtError('IO_ERROR', `${this.path}: short write`);
    // Only a synced slot becomes the newest; a failed save is retried on the same (older) slot.
    this.next = this.next === 0 ? 1 : 0;
    this.generation = generation;
  }

  async close(): Promise<void> {
    await this.saving;
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
