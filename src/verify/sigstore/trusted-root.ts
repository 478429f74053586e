/**
 * Trusted roots: a TrustedRoot JSON file (private Sigstore instances, tests), the root cached by
 * `ct trust update`, or the public-good root seeded in @sigstore/tuf (read from its package, so it
 * works offline). Every root is checked before use: @sigstore/verify 3.1 treats a tlog key without a
 * validity start as valid since the beginning of time; we reject such a root (SPEC §9).
 */
import { readFile } from 'node:fs/promises';
import { readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { CtError, asIoError } from '../../core/errors.js';
import { canonicalize } from '../../core/jcs.js';
import { sha256Digest } from '../../core/digest.js';

export const PUBLIC_GOOD_MIRROR = 'https://tuf-repo-cdn.sigstore.dev';

export interface LoadedTrustedRoot {
  root: TrustedRoot;
  /** The JSON form as read (protobuf-specs JSON). */
  json: Record<string, unknown>;
  /** sha256 of the JCS form: part of the verification cache key (SPEC §4). */
  digest: string;
  /** Where it came from: a path, `cache:<dir>` or `seed:@sigstore/tuf`. */
  source: string;
}

type Json = Record<string, unknown>;

/** Parses and checks a TrustedRoot JSON document. */
export function trustedRootFromJSON(json: unknown, source: string): LoadedTrustedRoot {
  const j = json as Json | null;
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new CtError('MALFORMED_BUNDLE', `${source}: trusted root is not a JSON object`, { where: source });
  const mediaType = j.mediaType;
  if (typeof mediaType !== 'string' || !mediaType.startsWith('application/vnd.dev.sigstore.trustedroot')) {
    throw new CtError('MALFORMED_BUNDLE', `${source}: not a Sigstore trusted root (mediaType ${JSON.stringify(mediaType)})`, { where: source });
  }
  let root: TrustedRoot;
  try {
    root = TrustedRoot.fromJSON(j);
  } catch (e) {
    throw new CtError('MALFORMED_BUNDLE', `${source}: trusted root does not parse: ${(e as Error).message}`, { where: source }, { cause: e });
  }
  root.tlogs.forEach((t, i) => {
    if (!t.publicKey?.rawBytes?.length) throw new CtError('UNTRUSTED_ROOT', `${source}: tlogs[${i}] (${t.baseUrl}) has no public key`, { where: `${source}#tlogs[${i}]` });
    // @sigstore/verify 3.1 gap: a missing start means "valid since 1970": any old entry would pass.
    if (!t.publicKey.validFor?.start) {
      throw new CtError('UNTRUSTED_ROOT', `${source}: tlogs[${i}] (${t.baseUrl}) has no validFor.start; a log key without a validity start is refused`, { where: `${source}#tlogs[${i}]` });
    }
  });
  root.certificateAuthorities.forEach((ca, i) => {
    if (!ca.certChain?.certificates?.length) throw new CtError('UNTRUSTED_ROOT', `${source}: certificateAuthorities[${i}] has no certificates`, { where: `${source}#certificateAuthorities[${i}]` });
  });
  return { root, json: j, digest: sha256Digest(canonicalize(j)), source };
}

export async function loadTrustedRootFile(path: string): Promise<LoadedTrustedRoot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw asIoError(e, path);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CtError('JSON_INVALID', `${path}: not JSON: ${(e as Error).message}`, { path }, { cause: e });
  }
  return trustedRootFromJSON(json, path);
}

interface Seeds { [mirror: string]: { 'root.json': string; targets: Record<string, string> } }

let seedCache: Seeds | undefined;
function seeds(): Seeds {
  if (!seedCache) {
    const require = createRequire(import.meta.url);
    seedCache = JSON.parse(readFileSync(require.resolve('@sigstore/tuf/seeds.json'), 'utf8')) as Seeds;
  }
  return seedCache;
}

/** The TUF root.json and trusted_root.json that @sigstore/tuf ships for the public-good mirror. */
export function publicGoodSeed(): { tufRoot: Buffer; trustedRoot: Buffer } {
  const s = seeds()[PUBLIC_GOOD_MIRROR];
  return { tufRoot: Buffer.from(s['root.json'], 'base64'), trustedRoot: Buffer.from(s.targets['trusted_root.json'], 'base64') };
}

/** Where `ct trust update` keeps the refreshed root (CT_SIGSTORE_CACHE, else XDG cache). */
export function defaultTrustCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CT_SIGSTORE_CACHE) return env.CT_SIGSTORE_CACHE;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'cerro-torre', 'sigstore');
}

export const CACHED_ROOT_FILE = 'trusted_root.json';
export const TRUST_STATE_FILE = 'trust-state.json';

export interface TrustState { updatedAt: string; mirror: string; digest: string }

export function readTrustState(cacheDir: string): TrustState | null {
  try {
    return JSON.parse(readFileSync(join(cacheDir, TRUST_STATE_FILE), 'utf8')) as TrustState;
  } catch {
    return null;
  }
}

/**
 * The public-good root without the network: the one `ct trust update` cached, or else the seed in
 * @sigstore/tuf. (sigstore.verify() would insist on a TUF refresh and fail offline.)
 */
export function publicGoodTrustedRoot(cacheDir: string = defaultTrustCacheDir()): LoadedTrustedRoot {
  const cached = join(cacheDir, CACHED_ROOT_FILE);
  try {
    if (statSync(cached).isFile()) return trustedRootFromJSON(JSON.parse(readFileSync(cached, 'utf8')), `cache:${cached}`);
  } catch (e) {
    if (e instanceof CtError) throw e;
  }
  // The seed never changes: parse it once (the cached file is re-read, `ct trust update` may replace it).
  seedRoot ??= trustedRootFromJSON(JSON.parse(publicGoodSeed().trustedRoot.toString('utf8')), 'seed:@sigstore/tuf');
  return seedRoot;
}

let seedRoot: LoadedTrustedRoot | undefined;

/**
 * Operator of each tlog, keyed by hex log id (the root's `operator`, else the log's host). A log is
 * one log by its key and by its URL (#13): tlogs sharing a key or a base URL get the operator of
 * the first of them, so that one log listed twice under two names counts once towards a quorum.
 */
export function tlogOperators(root: LoadedTrustedRoot): Map<string, { operator: string; baseUrl: string }> {
  const m = new Map<string, { operator: string; baseUrl: string }>();
  const byKey = new Map<string, string>();
  const byUrl = new Map<string, string>();
  for (const t of root.root.tlogs) {
    const key = Buffer.from(t.publicKey?.rawBytes ?? []).toString('base64');
    const url = hostOf(t.baseUrl).toLowerCase() + (URL.canParse(t.baseUrl) ? new URL(t.baseUrl).pathname.replace(/\/+$/, '') : '');
    const operator = byKey.get(key) ?? byUrl.get(url) ?? ((t as { operator?: string }).operator || hostOf(t.baseUrl));
    if (key) byKey.set(key, byKey.get(key) ?? operator);
    byUrl.set(url, byUrl.get(url) ?? operator);
    for (const id of [t.logId?.keyId, t.checkpointKeyId?.keyId]) {
      if (id) m.set(Buffer.from(id).toString('hex'), { operator, baseUrl: t.baseUrl });
    }
  }
  return m;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
