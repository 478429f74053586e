// Public API of the `.ctp` bundle module (see docs/ctp-format.md).
export { CtpArchive, BLOB_PREFIX, type CtpEntry } from './archive.js';
export { openCtp, openCtpToVerify, readCtpArchive, type FileTap } from './read.js';
export { checkOciLayout } from './check-layout.js';
export { parseManifest, serializeManifest, CTP_VERSION, type CtpManifest, type RuntimeSpec } from './manifest.js';
export { writeCtp, rewriteCtp, type CtpFileSource, type WriteCtpOptions, type RewriteOptions, type WriteResult } from './write.js';
export { packCtp, type PackOptions, type PackResult, type PackSource } from './pack/pack.js';
export { applyLayers, type ApplyOptions, type ApplyResult } from './apply-layers.js';
export { unpackCtp } from './unpack.js';
export { inspectBundle, formatReport, type BundleReport } from './inspect.js';
export { readLegacyCtp, legacyManifestSha256, type LegacyCtp } from './legacy.js';
export { readTar, type TarEntry, type BodySink } from './tar-read.js';
export { CTP_LIMITS, LAYER_LIMITS, type TarLimits } from './limits.js';
export { MT, type OciImage, type Platform, type Descriptor } from './oci.js';
export { defaultMtime } from './tar-write.js';
