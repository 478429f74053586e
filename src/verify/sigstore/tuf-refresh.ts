/**
 * `ct trust update`: refreshes the public-good trusted root through TUF (@sigstore/tuf), checks it
 * like any root (trusted-root.ts), and keeps it with the time it was fetched. Offline, nothing
 * changes: the cached root (or the seed shipped in @sigstore/tuf) stays in use and its age is
 * reported. This is the only module of src/verify/sigstore that touches the network.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getTrustedRoot } from '@sigstore/tuf';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { CtError } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs.js';
import { NetworkGuard } from '../../oci/guard.js';
import {
  CACHED_ROOT_FILE, PUBLIC_GOOD_MIRROR, TRUST_STATE_FILE, publicGoodSeed, publicGoodTrustedRoot, readTrustState, trustedRootFromJSON,
  type TrustState,
} from './trusted-root.js';

export interface TrustUpdateOptions {
  cacheDir: string;
  mirrorURL?: string;
  timeoutMs?: number;
  retries?: number;
  /** Non-public addresses the mirror may resolve to (tests: 127.0.0.1). */
  allowedAddresses?: string[];
  now?: Date;
}

export interface TrustUpdateResult {
  updated: boolean;
  offline: boolean;
  /** Which root is in use now. */
  source: 'tuf' | 'cache' | 'seed';
  mirror: string;
  digest: string;
  updatedAt: string | null;
  /** Seconds since the root in use was fetched; null for the seed (never fetched here). */
  ageSeconds: number | null;
  error?: string;
}

export async function updateTrustedRoot(o: TrustUpdateOptions): Promise<TrustUpdateResult> {
  const mirror = (o.mirrorURL ?? PUBLIC_GOOD_MIRROR).replace(/\/$/, '');
  const now = o.now ?? new Date();
  let url: URL;
  try {
    url = new URL(mirror);
  } catch {
    throw new CtError('USAGE', `TUF mirror ${JSON.stringify(mirror)} is not a URL`, { mirror });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new CtError('USAGE', `TUF mirror must be http(s): ${mirror}`, { mirror });
  await mkdir(o.cacheDir, { recursive: true });
  try {
    await new NetworkGuard({ allowedAddresses: o.allowedAddresses }).assertHostAllowed(url.hostname);
    const tufDir = join(o.cacheDir, 'tuf');
    // The public-good TUF root opens any mirror of the public-good repository.
    let rootPath: string | undefined;
    if (mirror !== PUBLIC_GOOD_MIRROR) {
      rootPath = join(o.cacheDir, 'tuf-root.json');
      await writeFile(rootPath, publicGoodSeed().tufRoot);
    }
    const root = await getTrustedRoot({ mirrorURL: mirror, cachePath: tufDir, rootPath, timeout: o.timeoutMs ?? 10_000, retry: o.retries ?? 1 });
    const json = TrustedRoot.toJSON(root) as Record<string, unknown>;
    const loaded = trustedRootFromJSON(json, `tuf:${mirror}`);
    await writeFileAtomic(join(o.cacheDir, CACHED_ROOT_FILE), `${JSON.stringify(json, null, 2)}\n`);
    const state: TrustState = { updatedAt: now.toISOString(), mirror, digest: loaded.digest };
    await writeFileAtomic(join(o.cacheDir, TRUST_STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
    return { updated: true, offline: false, source: 'tuf', mirror, digest: loaded.digest, updatedAt: state.updatedAt, ageSeconds: 0 };
  } catch (e) {
    // A refused mirror, or a root that arrived but fails our checks, is an error, not "offline".
    if (e instanceof CtError && e.code !== 'NETWORK_ERROR') throw e;
    const inUse = publicGoodTrustedRoot(o.cacheDir);
    const state = inUse.source.startsWith('cache:') ? readTrustState(o.cacheDir) : null;
    const updatedAt = state?.updatedAt ?? null;
    return {
      updated: false,
      offline: true,
      source: inUse.source.startsWith('cache:') ? 'cache' : 'seed',
      mirror,
      digest: inUse.digest,
      updatedAt,
      ageSeconds: updatedAt ? Math.max(0, Math.round((now.getTime() - Date.parse(updatedAt)) / 1000)) : null,
      error: (e as Error)?.message ?? String(e),
    };
  }
}
