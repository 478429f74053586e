import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Db } from '../store/db.js';

const BUNDLE = /^([0-9a-f]{64})\.ctp$/;
/** A fetch's temporary file (tempPathFor of bundles/fetch.ctp): left behind only by a killed server. */
const FETCH_TEMP = /^\.fetch\.ctp\.[0-9a-f]{12}\.tmp$/;

/**
 * The bundle store (`<dataDir>/bundles`) holds each bundle the server fetched and verified, for
 * its hosts to download. Bundles a deployment names (any deployment, any status: a rollback or a
 * promotion reads them again) or a host was assigned are kept; any other (verified through
 * `/api/v1/verify` or a preview, never deployed) is removed once unused for `unusedMs` — the deploy
 * steps mark a bundle used each time they take it from their cache, and fetch it again when it is
 * gone. A fetch's temporary file a killed server left goes after the same time.
 */
export async function pruneBundles(db: Db, dir: string, unusedMs: number, now: number, stopped: () => boolean): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0; // no store yet
  }
  const old: { path: string; digest?: string }[] = [];
  for (const name of names) {
    const bundle = BUNDLE.exec(name);
    if (!bundle && !FETCH_TEMP.test(name)) continue;
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile() && now - st.mtimeMs >= unusedMs) old.push({ path, ...(bundle ? { digest: `sha256:${bundle[1]}` } : {}) });
  }
  if (old.length === 0 || stopped()) return 0;
  // One read of what is named (not a query per file: the deployments table grows with every deploy).
  const named = new Set<string>();
  for (const sql of ['SELECT DISTINCT bundle_digest AS d FROM deployments WHERE bundle_digest IS NOT NULL', 'SELECT DISTINCT bundle_digest AS d FROM host_bundles']) {
    for (const r of await db.query<{ d: string }>(sql)) named.add(r.d);
  }
  let removed = 0;
  for (const f of old) {
    if (stopped()) break;
    if (f.digest && named.has(f.digest)) continue;
    // Taken from the deploy steps' cache (marked used) since it was listed: kept.
    const st = await stat(f.path).catch(() => undefined);
    if (!st || now - st.mtimeMs < unusedMs) continue;
    await rm(f.path, { force: true });
    removed++;
  }
  return removed;
}
