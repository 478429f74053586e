import { createHash } from 'node:crypto';
import { closeSync, fdatasync, fstatSync, openSync, readSync, write } from 'node:fs';
import { join } from 'node:path';
import { asIoError, CtError } from '../../src/core/errors.js';
import { writeFileAtomic } from '../../src/core/fs.js';

/**
 * The highest assignment generation this host accepted, saved durably before the host acts on the
 * assignment (docs/host-protocol.md "Assignments and generations"): what keeps a restarted host
 * from being downgraded by a replayed assignment.
 *
 * It is saved at every assignment, so it is a file of two fixed-size slots kept open, not a file
 * replaced each time: a save writes the slot that does NOT hold the newest record and syncs it
 * (one write and one fdatasync, where a temporary file, write, fsync, close and rename cost four
 * times the CPU and a directory change per assignment; #14 target 8). A crash in the middle of a
 * save leaves the other slot, the last one synced, intact. Each slot is
 * `<SHA-256 hex of the rest> {"hostId":…,"generation":…}` padded with spaces: a torn or foreign
 * slot fails its hash and is ignored, and a slot of another enrolment (another host id in the same
 * state directory) does not count.
 */
const SLOT = 256;
const FILE = 'generation';

function encode(hostId: string, generation: number): Buffer {
  const body = JSON.stringify({ hostId, generation }).padEnd(SLOT - 66, ' ');
  if (body.length > SLOT - 66) throw new CtError('USAGE', 'host id too long for the generation record');
  const text = `${createHash('sha256').update(body).digest('hex')} ${body}\n`;
  return Buffer.from(text, 'latin1');
}

/** The generation a slot holds for this host, or undefined (torn, blank, foreign). */
function decode(slot: Buffer, hostId: string): number | undefined {
  if (slot.length !== SLOT) return undefined;
  const text = slot.toString('latin1');
  const body = text.slice(65, SLOT - 1);
  if (text[64] !== ' ' || text[SLOT - 1] !== '\n' || createHash('sha256').update(body).digest('hex') !== text.slice(0, 64)) return undefined;
  try {
    const r = JSON.parse(body) as { hostId?: unknown; generation?: unknown };
    return r.hostId === hostId && Number.isSafeInteger(r.generation) && (r.generation as number) >= 0 ? (r.generation as number) : undefined;
  } catch {
    return undefined;
  }
}

/** The file's two slots, or what there is of them (nothing when it is missing); a longer file is damaged. */
function readHead(path: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw asIoError(e, path);
  }
  try {
    if (fstatSync(fd).size !== 2 * SLOT) return Buffer.alloc(0);
    const buf = Buffer.alloc(2 * SLOT);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
  } finally {
    closeSync(fd);
  }
}

export class GenerationRecord {
  private closed = false;
  private saving: Promise<unknown> = Promise.resolve();

  private constructor(private readonly path: string, private readonly fd: number, private readonly hostId: string, private next: 0 | 1, public generation: number) {}

  /**
   * Opens the record of `hostId` in `stateDir`; `floor` is a generation known otherwise (the one an
   * older agent kept in enrolment.json), and the record holds at least it. A missing or damaged
   * file is made again, atomically, holding the highest generation found.
   */
  static async open(stateDir: string, hostId: string, floor: number): Promise<GenerationRecord> {
    const path = join(stateDir, FILE);
    const bytes = readHead(path);
    const held = [0, 1].map((i) => decode(bytes.subarray(i * SLOT, (i + 1) * SLOT), hostId));
    const best = Math.max(floor, ...held.map((g) => g ?? -1));
    const newest = held[0] !== undefined && (held[1] === undefined || held[0] >= held[1]) ? 0 : held[1] !== undefined ? 1 : -1;
    if (bytes.length !== 2 * SLOT || newest === -1 || held[newest]! < best) {
      // Slot 0 holds the record, slot 1 nothing yet.
      await writeFileAtomic(path, Buffer.concat([encode(hostId, best), Buffer.alloc(SLOT, 0x20)]), 0o600);
      return new GenerationRecord(path, openSync(path, 'r+'), hostId, 1, best);
    }
    return new GenerationRecord(path, openSync(path, 'r+'), hostId, newest === 0 ? 1 : 0, best);
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
    // Callbacks rather than FileHandle promises: a third of the CPU for these two calls.
    await new Promise<void>((resolve, reject) =>
      write(this.fd, slot, 0, SLOT, this.next * SLOT, (e, n) => (e ? reject(asIoError(e, this.path)) : n !== SLOT ? reject(new CtError('IO_ERROR', `${this.path}: short write`)) : resolve())),
    );
    await new Promise<void>((resolve, reject) => fdatasync(this.fd, (e) => (e ? reject(asIoError(e, this.path)) : resolve())));
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
