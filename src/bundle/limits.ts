/**
 * Size and count limits for reading hostile archives. Every limit is checked while the bytes
 * stream, before anything is buffered or written, so an oversized archive costs at most one limit's
 * worth of work. Exceeding one is TAR_LIMIT_EXCEEDED.
 */
export interface TarLimits {
  /** Uncompressed bytes of the whole tar stream. */
  maxTotalBytes: number;
  /** Entries (files, directories, links; extended headers not counted). */
  maxEntries: number;
  /** Size of one entry's body. */
  maxEntryBytes: number;
  /** Length in bytes of an entry name (and of a link target). */
  maxNameBytes: number;
  /** Uncompressed tar bytes per compressed byte read (gzip input only; COMPRESSION_RATIO_EXCEEDED). */
  maxRatio: number;
  /** Uncompressed bytes always allowed whatever the ratio (small, very compressible archives). */
  ratioFloorBytes: number;
  /**
   * Zero bytes allowed after the end-of-archive marker: up to the end of this record size (GNU
   * tar pads archives to 10240-byte records); anything more, or anything non-zero, is TRAILING_DATA.
   */
  recordBytes: number;
  /**
   * Outer-archive strictness (finding: unsigned bytes): extended headers only as the writer makes
   * them — one pax header (keys path, linkpath, size, mtime) and/or one GNU long name before an
   * entry, no global pax header, no long link name. Layers allow any pax keys, still one header
   * of each kind per entry.
   */
  strictHeaders: boolean;
}

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/** Limits for the outer `.ctp` archive: a handful of files plus the image's blobs. */
export const CTP_LIMITS: TarLimits = {
  maxTotalBytes: 16 * GiB,
  maxEntries: 10_000,
  maxEntryBytes: 8 * GiB,
  maxNameBytes: 1024,
  // The outer archive holds already-compressed layers: its own gzip gains little.
  maxRatio: 100,
  ratioFloorBytes: 64 * MiB,
  recordBytes: 10240,
  strictHeaders: true,
};

/**
 * Limits for the layers applied to a rootfs (applyLayers): maxTotalBytes and maxEntries bound all
 * layers together; real root filesystems have many small files (large images hold ~100,000).
 */
export const LAYER_LIMITS: TarLimits = {
  maxTotalBytes: 32 * GiB,
  maxEntries: 250_000,
  maxEntryBytes: 16 * GiB,
  maxNameBytes: 4096,
  // Text-heavy layers compress 5-10 times; 100 leaves room and stops bombs (deflate reaches 1032).
  maxRatio: 100,
  ratioFloorBytes: 64 * MiB,
  recordBytes: 10240,
  strictHeaders: false,
};

/** Blobs up to this size are kept in memory when a `.ctp` is opened (image manifests, configs). */
export const IN_MEMORY_BLOB_BYTES = 4 * 1024 * 1024;

/** Small files of a bundle (manifest, attestations, security profiles) may not exceed this. */
export const MAX_SMALL_FILE_BYTES = 16 * 1024 * 1024;

/**
 * `manifest.toml` may not exceed this (a real one is well under 4 KiB); its TOML parse is bounded
 * further by TOML_LIMITS (tables, keys, nesting).
 */
export const MAX_MANIFEST_BYTES = 256 * 1024;

export function limitsWith(base: TarLimits, over?: Partial<TarLimits>): TarLimits {
  return { ...base, ...(over ?? {}) };
}
