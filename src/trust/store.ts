/**
 * Loading, saving and querying trust stores (SPEC §5). Everything here works on a store that
 * validate.ts accepted; the loaders never hand back an unvalidated document.
 */
import { readFile } from 'node:fs/promises';
import { canonicalBytes } from '../core/jcs.js';
import { sha256Digest } from '../core/digest.js';
import { CtError, asIoError } from '../core/errors.js';
import { MAX_JSON_DEPTH, jsonDepthExceeds } from '../core/json.js';
import { writeFileAtomic } from '../core/fs.js';
import type { TrustRole, TrustStore, TrustedKey } from './types.js';
import { validateTrustStore } from './validate.js';

export type KeyValidity = 'valid' | 'expired' | 'not-yet-valid';

/** Parses JSON text into a validated trust store; TRUST_STORE_INVALID (path '') when it is not JSON. */
export function parseTrustStore(text: string, where = 'trust store'): TrustStore {
  let value: unknown;
  if (jsonDepthExceeds(text)) {
    throw new CtError('TRUST_STORE_INVALID', `${where}: JSON nested deeper than ${MAX_JSON_DEPTH} levels`, { where, path: '', limit: MAX_JSON_DEPTH, issues: [{ path: '', message: `is nested deeper than ${MAX_JSON_DEPTH} levels` }] });
  }
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CtError('TRUST_STORE_INVALID', `${where}: not JSON (${(e as Error).message})`, { where, path: '', issues: [{ path: '', message: 'is not JSON' }] }, { cause: e });
  }
  validateTrustStore(value, where);
  return withoutPrototypes(value);
}

/**
 * The id-keyed maps of a store (roles, thresholds, logs) as objects without a prototype, so that an
 * id such as `__proto__` or `constructor` is looked up as what it is: an unknown id.
 */
export function withoutPrototypes(store: TrustStore): TrustStore {
  const bare = <V>(m: Record<string, V>): Record<string, V> => {
    const o = Object.create(null) as Record<string, V>;
    for (const [k, v] of Object.entries(m)) Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    return o;
  };
  return {
    ...store,
    keys: bare(store.keys),
    ...(store.thresholds ? { thresholds: bare(store.thresholds) } : {}),
    ...(store.logs ? { logs: bare(store.logs) } : {}),
  };
}

/** The entry under an id, own properties only (stores built in code may have prototypes). */
export function ownEntry<V>(map: Record<string, V> | undefined, id: string): V | undefined {
  return map !== undefined && Object.hasOwn(map, id) ? map[id] : undefined;
}

export async function loadTrustStore(path: string): Promise<TrustStore> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw asIoError(e, path);
  }
  return parseTrustStore(text, path);
}

/**
 * Validates, then writes atomically (pretty JSON; signatures cover the JCS form, not these bytes).
 * `replace: false` (a new store without --force): a file at `path` is refused, not replaced.
 */
export async function saveTrustStore(path: string, store: TrustStore, o: { replace?: boolean } = {}): Promise<void> {
  validateTrustStore(store, path);
  await writeFileAtomic(path, `${JSON.stringify(store, null, 2)}\n`, 0o644, { replace: o.replace });
}

/** sha256 of the JCS form of the whole store (signatures included): the trust-material cache key. */
export function trustStoreDigest(store: TrustStore): string {
  return sha256Digest(canonicalBytes(store));
}

export function keysInRole(store: TrustStore, role: TrustRole): TrustedKey[] {
  return ownEntry(store.keys, role) ?? [];
}

/** The entry of `keyId` in `role`, when the key holds that role. */
export function keyInRole(store: TrustStore, role: TrustRole, keyId: string): TrustedKey | undefined {
  return keysInRole(store, role).find((k) => k.id === keyId);
}

/**
 * A key and every role it holds. When a key is listed under several roles the first entry is
 * returned as `key`; callers that care about one role's validity window use keyInRole.
 */
export function findKey(store: TrustStore, keyId: string): { key: TrustedKey; roles: TrustRole[] } | undefined {
  let key: TrustedKey | undefined;
  const roles: TrustRole[] = [];
  for (const [role, entries] of Object.entries(store.keys)) {
    const hit = entries.find((k) => k.id === keyId);
    if (hit) {
      key ??= hit;
      roles.push(role);
    }
  }
  return key ? { key, roles } : undefined;
}

/** Validity window check at `now`: validFrom inclusive, validUntil exclusive (SPEC §4: current time). */
export function keyValidity(key: TrustedKey, now: Date = new Date()): KeyValidity {
  const t = now.getTime();
  if (t < Date.parse(key.validFrom)) return 'not-yet-valid';
  if (key.validUntil !== undefined && t >= Date.parse(key.validUntil)) return 'expired';
  return 'valid';
}

/** The verification code for a key that is not valid now (SPEC §4 spelling). */
export function validityCode(v: Exclude<KeyValidity, 'valid'>): 'EXPIRED_KEY' | 'KEY_NOT_YET_VALID' {
  return v === 'expired' ? 'EXPIRED_KEY' : 'KEY_NOT_YET_VALID';
}

export function isKeyRevoked(store: TrustStore, keyId: string): boolean {
  return store.revoked?.keys?.includes(keyId) ?? false;
}

export function isAttestationRevoked(store: TrustStore, digest: string): boolean {
  return store.revoked?.attestations?.includes(digest) ?? false;
}
