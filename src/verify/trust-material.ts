/** Trust material from a loaded trust store and, optionally, a loaded Sigstore trusted root. */
import { trustStoreDigest } from '../trust/store.js';
import type { TrustStore } from '../trust/types.js';
import type { TrustMaterial } from './report.js';

export function trustMaterial(store: TrustStore, root?: { digest: string }): TrustMaterial {
  return { store, storeDigest: trustStoreDigest(store), ...(root ? { trustedRoot: root, trustedRootDigest: root.digest } : {}) };
}
