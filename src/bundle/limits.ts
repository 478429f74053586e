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
}

const GiB = 1024 ** 3;

/** Limits for the outer `.ctp` archive: a handful of files plus the image's blobs. */
export const CTP_LIMITS: TarLimits = {
  maxTotalBytes: 16 * GiB,
  maxEntries: 10_000,
  maxEntryBytes: 8 * GiB,
  maxNameBytes: 1024,
};

/** Limits for one image layer applied to a rootfs: real root filesystems have many small files. */
export const LAYER_LIMITS: TarLimits = {
  maxTotalBytes: 32 * GiB,
  maxEntries: 1_000_000,
  maxEntryBytes: 16 * GiB,
  maxNameBytes: 4096,
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
