import { CtError } from '../core/errors.js';
import type { TarLimits } from './limits.js';

/** Where one real (non-metadata) entry sits in the uncompressed tar stream. */
export interface WalkedHeader {
  offset: number;
  dataOffset: number;
  size: number;
  typeflag: string;
}

const EMPTY = Buffer.alloc(0);
const META_TYPES = new Set(['x', 'X', 'g', 'L', 'K', 'N']);
const MAX_META_BYTES = 1024 * 1024;

/**
 * Walks the 512-byte block structure of a tar stream in front of the `tar` package's parser.
 *
 * The parser does the real decoding (names, pax records, types), but it does not report byte
 * offsets, stops silently at the end-of-archive marker and ignores whatever follows, and accepts
 * an archive that simply stops after an entry. This walker adds what a hostile-input reader needs
 * and the parser cannot give: the offset of every header for error messages, header checksums
 * checked at a known offset, limits checked before bytes are buffered, zero padding after every
 * entry's data, a required end-of-archive marker, and "nothing but zero blocks after it". Only the bytes up to the marker are forwarded to
 * the parser. `readTar` cross-checks each entry's size against the parser's, so if the two ever
 * disagree about the block structure the archive is rejected rather than read two ways.
 */
export class TarWalker {
  pos = 0;
  entries = 0;
  private state: 'header' | 'body' | 'eof' = 'header';
  private remaining = 0;
  private partial: Buffer[] = [];
  private partialLen = 0;
  private zeroBlocks = 0;
  /** Bytes of the current body that are data; the rest, up to the 512 boundary, is padding. */
  private dataLeft = 0;
  /** Header offset of the body being read (for padding errors). */
  private bodyOf = 0;
  private meta: { type: string; need: number; parts: Buffer[] } | undefined;
  private paxSize: number | undefined;
  private paxPath: string | undefined;
  private current: WalkedHeader | undefined;
  private pending: WalkedHeader[] = [];
  private pendingHead = 0;
  /** Offset just after the end-of-archive marker, once seen. */
  private markerEnd: number | undefined;
  /** Kinds of extended header seen since the last entry. */
  private readonly metaKinds = new Set<string>();

  constructor(private readonly limits: TarLimits, private readonly where: string) {}

  /** Next real entry header the parser will report, in stream order. */
  shiftHeader(): WalkedHeader | undefined {
    const h = this.pending[this.pendingHead];
    if (h === undefined) return undefined;
    this.pendingHead++;
    // A queue without Array.shift (O(n)): compact once the consumed head dominates.
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    return h;
  }

  /** Consumes a chunk; returns the part the parser must see (empty once the marker has passed). */
  feed(chunk: Buffer): Buffer {
    if (this.state === 'eof') {
      this.checkTrailing(chunk);
      return EMPTY;
    }
    let i = 0;
    while (i < chunk.length && (this.state as string) !== 'eof') {
      if (this.state === 'body') {
        const n = Math.min(this.remaining, chunk.length - i);
        if (this.meta && this.meta.need > 0) {
          const take = Math.min(n, this.meta.need);
          this.meta.parts.push(chunk.subarray(i, i + take));
          this.meta.need -= take;
        }
        const data = Math.min(n, this.dataLeft);
        if (data < n) this.checkPadding(chunk, i + data, i + n, this.pos + data);
        this.dataLeft -= data;
        i += n;
        this.advance(n);
        this.remaining -= n;
        if (this.remaining === 0) this.endBody();
        continue;
      }
      let block: Buffer;
      if (this.partialLen === 0 && chunk.length - i >= 512) {
        block = chunk.subarray(i, i + 512);
        i += 512;
      } else {
        const n = Math.min(512 - this.partialLen, chunk.length - i);
        this.partial.push(chunk.subarray(i, i + n));
        this.partialLen += n;
        i += n;
        if (this.partialLen < 512) break;
        block = Buffer.concat(this.partial, 512);
        this.partial = [];
        this.partialLen = 0;
      }
      this.header(block);
    }
    if (i < chunk.length) this.checkTrailing(chunk.subarray(i));
    return i === chunk.length ? chunk : chunk.subarray(0, i);
  }

  /** Called at the end of input: the archive must have ended cleanly with its marker. */
  finish(): void {
    if (this.state === 'eof') return;
    if (this.state === 'body') {
      const what = this.current ? `entry at offset ${this.current.offset}` : 'extended header';
      throw this.malformed(`truncated: input ends inside ${what} (${this.remaining} bytes missing)`);
    }
    if (this.partialLen > 0) throw this.malformed(`truncated: partial header block at offset ${this.pos}`);
    throw this.malformed(`truncated: no end-of-archive marker (two zero blocks) at offset ${this.pos}`);
  }

  private advance(n: number): void {
    this.pos += n;
    if (this.pos > this.limits.maxTotalBytes) {
      throw new CtError('TAR_LIMIT_EXCEEDED', `${this.where}: archive larger than ${this.limits.maxTotalBytes} bytes (uncompressed)`, { where: this.where, limit: 'maxTotalBytes' });
    }
  }

  private header(block: Buffer): void {
    const offset = this.pos;
    if (isZero(block)) {
      this.advance(512);
      this.zeroBlocks++;
      if (this.meta || this.paxPath !== undefined || this.paxSize !== undefined) {
        throw this.malformed(`extended header at offset ${offset - 512} is not followed by an entry`);
      }
      if (this.zeroBlocks === 2) this.state = 'eof';
      return;
    }
    if (this.zeroBlocks > 0) throw this.malformed(`lone zero block before offset ${offset}`);
    if (offset === 0 && block[0] === 0x1f && block[1] === 0x8b) throw this.malformed('tar stream is itself gzip-compressed');
    const stored = parseNumber(block, 148, 8);
    if (stored === null || stored !== checksumOf(block)) throw this.malformed(`header checksum mismatch at offset ${offset}`);
    const typeflag = block[156] === 0 ? '0' : String.fromCharCode(block[156]);
    const fieldSize = parseNumber(block, 124, 12);
    if (fieldSize === null) throw this.malformed(`invalid size field at offset ${offset}`);
    this.advance(512);
    if (META_TYPES.has(typeflag)) {
      // One extended header of each kind per entry: a run of them is bytes no digest covers.
      const kind = typeflag === 'X' ? 'x' : typeflag === 'N' ? 'L' : typeflag;
      if (this.metaKinds.has(kind)) throw this.unsigned(`a second extended header of type ${typeflag} before one entry at offset ${offset}`, offset);
      if (this.limits.strictHeaders && (kind === 'g' || kind === 'K')) throw this.unsigned(`extended header of type ${typeflag} at offset ${offset} (a .ctp has no ${kind === 'g' ? 'global pax headers' : 'links'})`, offset);
      this.metaKinds.add(kind);
      if (fieldSize > MAX_META_BYTES) {
        throw new CtError('TAR_LIMIT_EXCEEDED', `${this.where}: extended header at offset ${offset} is ${fieldSize} bytes (max ${MAX_META_BYTES})`, { where: this.where, offset, limit: 'extendedHeader' });
      }
      this.meta = { type: typeflag, need: fieldSize, parts: [] };
      this.current = undefined;
      this.startBody(fieldSize, offset);
      return;
    }
    const path = this.paxPath ?? nameField(block);
    this.metaKinds.clear();
    let size = this.paxSize ?? fieldSize;
    this.paxSize = undefined;
    this.paxPath = undefined;
    // The parser gives directories (and old-style "file with trailing slash" dirs) no body.
    if (typeflag === '5' || (typeflag === '0' && path.endsWith('/'))) size = 0;
    this.entries++;
    if (this.entries > this.limits.maxEntries) {
      throw new CtError('TAR_LIMIT_EXCEEDED', `${this.where}: more than ${this.limits.maxEntries} entries (at offset ${offset})`, { where: this.where, offset, limit: 'maxEntries' });
    }
    if (size > this.limits.maxEntryBytes) {
      throw new CtError('TAR_LIMIT_EXCEEDED', `${this.where}: entry at offset ${offset} is ${size} bytes (max ${this.limits.maxEntryBytes})`, { where: this.where, offset, limit: 'maxEntryBytes' });
    }
    this.current = { offset, dataOffset: offset + 512, size, typeflag };
    this.pending.push(this.current);
    this.startBody(size, offset);
  }

  private startBody(size: number, headerOffset: number): void {
    this.remaining = Math.ceil(size / 512) * 512;
    this.dataLeft = size;
    this.bodyOf = headerOffset;
    if (this.remaining > 0) this.state = 'body';
    else this.endBody();
  }

  private endBody(): void {
    this.state = 'header';
    const meta = this.meta;
    if (!meta) return;
    this.meta = undefined;
    const body = Buffer.concat(meta.parts);
    if (meta.type === 'L' || meta.type === 'N') {
      // NUL-terminated; anything after the terminator but more NULs would be unsigned bytes.
      const nul = body.indexOf(0);
      if (nul !== -1 && body.subarray(nul).some((b) => b !== 0)) throw this.unsafe(`GNU long name before offset ${this.pos} has bytes after its NUL`);
      this.paxPath = body.toString('utf8', 0, nul === -1 ? body.length : nul);
    } else if (meta.type === 'K') {
      const nul = body.indexOf(0);
      if (nul !== -1 && body.subarray(nul).some((b) => b !== 0)) throw this.unsafe(`GNU long link name before offset ${this.pos} has bytes after its NUL`);
    } else if (meta.type === 'x' || meta.type === 'X' || meta.type === 'g') {
      const rec = parsePax(body);
      if (rec === null) throw this.malformed(`malformed pax extended header before offset ${this.pos}`);
      for (const [k, v] of rec.all) {
        if (v.includes('\0')) throw this.unsafe(`pax record ${JSON.stringify(k).slice(0, 100)} before offset ${this.pos} holds a NUL`);
        if (this.limits.strictHeaders && k === 'mtime' && !/^[0-9]{1,12}(\.[0-9]{1,9})?$/.test(v)) throw this.malformed(`pax mtime ${JSON.stringify(v).slice(0, 40)} before offset ${this.pos} is not a time`);
        if (this.limits.strictHeaders && !STRICT_PAX_KEYS.has(k)) throw this.unsigned(`pax record ${JSON.stringify(k).slice(0, 100)} before offset ${this.pos} (a .ctp's pax headers carry only ${[...STRICT_PAX_KEYS].join(', ')})`, this.pos);
      }
      if (meta.type === 'g') {
        if (rec.size !== undefined || rec.path !== undefined) throw this.malformed(`global pax header before offset ${this.pos} sets size or path`);
        return;
      }
      if (rec.size !== undefined) {
        if (!/^[0-9]+$/.test(rec.size) || !Number.isSafeInteger(Number(rec.size))) throw this.malformed(`invalid pax size before offset ${this.pos}`);
        this.paxSize = Number(rec.size);
      }
      if (rec.path !== undefined) this.paxPath = rec.path;
    }
  }

  /**
   * Padding (after an entry's data, up to the next 512-byte boundary) must be zero. No digest
   * covers those bytes, so otherwise they could change while every digest still matched, and one
   * signed bundle would exist in many spellings. `pos` is the stream offset of `chunk[from]`.
   */
  private checkPadding(chunk: Buffer, from: number, to: number, pos: number): void {
    for (let k = from; k < to; k++) {
      if (chunk[k] !== 0) {
        const at = pos + (k - from);
        throw new CtError('TAR_MALFORMED', `${this.where}: non-zero padding after the entry at offset ${this.bodyOf}, at offset ${at}`, { where: this.where, offset: at, entryOffset: this.bodyOf });
      }
    }
  }

  /**
   * After the end-of-archive marker only zero bytes up to the end of the current tar record may
   * follow (what GNU tar writes); anything else is refused at once, without reading on.
   */
  private checkTrailing(rest: Buffer): void {
    this.markerEnd ??= this.pos;
    const allowed = Math.ceil(this.markerEnd / this.limits.recordBytes) * this.limits.recordBytes;
    for (let k = 0; k < rest.length; k++) {
      if (rest[k] !== 0) throw this.trailingData(`non-zero byte after the end-of-archive marker at offset ${this.pos + k}`, this.pos + k);
      if (this.pos + k >= allowed) throw this.trailingData(`more than the record padding after the end-of-archive marker (offset ${this.markerEnd}): zeros beyond offset ${allowed}`, this.pos + k);
    }
    this.advance(rest.length);
  }

  private trailingData(msg: string, offset: number): CtError {
    return new CtError('TRAILING_DATA', `${this.where}: ${msg}`, { where: this.where, offset, part: 'tar' });
  }

  private unsigned(msg: string, offset: number): CtError {
    return new CtError('UNSIGNED_CONTENT', `${this.where}: ${msg}`, { where: this.where, offset, what: 'extended header' });
  }

  private unsafe(msg: string): CtError {
    return new CtError('TAR_UNSAFE_PATH', `${this.where}: ${msg}`, { where: this.where, offset: this.pos, reason: 'NUL in name' });
  }

  private malformed(msg: string): CtError {
    return new CtError('TAR_MALFORMED', `${this.where}: ${msg}`, { where: this.where, offset: this.pos });
  }
}

function isZero(b: Buffer): boolean {
  for (let k = 0; k < b.length; k++) if (b[k] !== 0) return false;
  return true;
}

/** Octal (NUL/space terminated) or GNU base-256 numeric field; null when invalid or negative. */
function parseNumber(b: Buffer, off: number, len: number): number | null {
  if (b[off] & 0x80) {
    if (b[off] === 0xff) return null;
    let v = b[off] & 0x7f;
    for (let k = 1; k < len; k++) v = v * 256 + b[off + k];
    return Number.isSafeInteger(v) ? v : null;
  }
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return null;
  return parseInt(s, 8);
}

function checksumOf(b: Buffer): number {
  let sum = 8 * 0x20;
  for (let k = 0; k < 148; k++) sum += b[k];
  for (let k = 156; k < 512; k++) sum += b[k];
  return sum;
}

function nameField(b: Buffer): string {
  const end = b.indexOf(0, 0);
  return b.toString('utf8', 0, end === -1 || end > 100 ? 100 : end);
}

/** The pax keys a `.ctp` may carry (what the writer emits for long names and big sizes). */
const STRICT_PAX_KEYS: ReadonlySet<string> = new Set(['path', 'linkpath', 'size', 'mtime']);

/** Pax records `"<len> <key>=<value>\n"`: size and path move block boundaries; `all` lists every record. */
function parsePax(body: Buffer): { size?: string; path?: string; all: [string, string][] } | null {
  const out: { size?: string; path?: string; all: [string, string][] } = { all: [] };
  let i = 0;
  while (i < body.length) {
    if (body[i] === 0) break;
    const sp = body.indexOf(0x20, i);
    if (sp === -1) return null;
    const len = Number(body.toString('latin1', i, sp));
    if (!Number.isSafeInteger(len) || len <= sp - i || i + len > body.length || body[i + len - 1] !== 0x0a) return null;
    const rec = body.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq === -1) return null;
    const key = rec.slice(0, eq);
    out.all.push([key, rec.slice(eq + 1)]);
    if (key === 'size') out.size = rec.slice(eq + 1);
    if (key === 'path') out.path = rec.slice(eq + 1);
    i += len;
  }
  return out;
}
