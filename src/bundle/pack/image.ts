import type { CtpFileSource } from '../write.js';
import type { Platform } from '../oci.js';

/** An image ready to be put into a bundle's OCI layout: manifest and config bytes as-is, layers streamed. */
export interface SourceImage {
  manifestBytes: Buffer;
  configBytes: Buffer;
  /** Layer blobs: digest (`sha256:`), size and where the bytes come from (checked while copied). */
  layers: { digest: string; size: number; source: CtpFileSource }[];
  platform: Platform;
}
