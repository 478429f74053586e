import { Transform } from 'node:stream';
import { createGzip } from 'node:zlib';

/** Compression level of every gzip stream we write (the `gzip -6` default). */
export const GZIP_LEVEL = 6;

/** OS byte of the gzip header: 255 "unknown", as Go's compress/gzip (docker, containerd) writes. */
const GZIP_OS_UNKNOWN = 0xff;

/**
 * A gzip compressor whose output depends only on the input bytes: zlib never writes a file name and
 * Node passes mtime 0; the only platform-dependent header byte (OS, offset 9) is fixed here.
 * Returns the two stages to put in a pipeline: compressor, then header fixer.
 */
export function deterministicGzip(level = GZIP_LEVEL): [Transform, Transform] {
  const gz = createGzip({ level, chunkSize: 256 * 1024 });
  let seen = 0;
  const fix = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (seen <= 9 && seen + chunk.length > 9) {
        chunk = Buffer.from(chunk);
        chunk[9 - seen] = GZIP_OS_UNKNOWN;
        // Bytes 4-7 (mtime) are zero from zlib; assert rather than trust silently.
        for (let k = 4; k <= 7; k++) if (k >= seen && k - seen < chunk.length) chunk[k - seen] = 0;
      }
      seen += chunk.length;
      cb(null, chunk);
    },
  });
  return [gz, fix];
}
