import { Header, Pax } from 'tar';

export type WriteEntryType = 'File' | 'Directory' | 'SymbolicLink';

export interface HeaderSpec {
  /** Entry name as stored: relative, no `./`; directories end with `/`. */
  name: string;
  type: WriteEntryType;
  size: number;
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkpath?: string;
}

const ZERO = Buffer.alloc(1024);

/**
 * Encodes one entry's header block(s) with nothing that varies between runs: uid/gid 0, empty
 * user and group names, the given mtime, no atime/ctime. Names that do not fit ustar get a pax
 * header carrying only `path` (and `linkpath`/`size` when those overflow), itself with fixed fields.
 */
export function encodeHeader(spec: HeaderSpec): Buffer {
  const fields = {
    path: spec.name,
    mode: spec.mode,
    uid: 0,
    gid: 0,
    size: spec.type === 'File' ? spec.size : 0,
    mtime: new Date(spec.mtime * 1000),
    type: spec.type,
    linkpath: spec.linkpath ?? '',
    uname: '',
    gname: '',
    devmaj: 0,
    devmin: 0,
  };
  const block = Buffer.alloc(512);
  const needPax = new Header(fields).encode(block);
  if (!needPax) return block;
  const pax = new Pax({
    path: spec.name,
    linkpath: spec.linkpath && Buffer.byteLength(spec.linkpath) > 100 ? spec.linkpath : undefined,
    size: fields.size >= 8 ** 11 ? fields.size : undefined,
  }).encode();
  return Buffer.concat([pax, block]);
}

/** Zero padding after a body of `size` bytes, up to the next 512-byte boundary. */
export function padding(size: number): Buffer {
  const n = (512 - (size % 512)) % 512;
  return ZERO.subarray(0, n);
}

/** The end-of-archive marker: two zero blocks. */
export const END_OF_ARCHIVE = ZERO;

/** mtime for everything we write: SOURCE_DATE_EPOCH when set (reproducible builds), else 0. */
export function defaultMtime(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}
