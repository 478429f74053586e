/**
 * Pure edits of a trust store, used by `ct trust-store` and `ct key trust`. Each returns a new
 * store with `updated` set and without signatures (an edit invalidates them; the updaters sign
 * the edited document again). None of them changes `version`: a new release is an explicit
 * `bumpVersion`, so that several edits and several signers share one version number.
 */
import type { KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { keyIdOf, spkiBase64 } from './keyid.js';
import { keyAlgorithmOf } from './keys.js';
import type { TrustRole, TrustStore, TrustedKey, TrustedLog } from './types.js';
import { normalLogUrl } from './validate.js';

/** RFC 3339 in UTC at second precision, as the VCS samples write it. */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function edited(store: TrustStore, now: Date): TrustStore {
  const { signatures: _dropped, ...rest } = structuredClone(store);
  return { ...rest, updated: isoSeconds(now) };
}

export function newTrustStore(id: string, now: Date = new Date()): TrustStore {
  if (!id) throw new CtError('USAGE', 'a trust store needs a non-empty id', {});
  return { version: 1, id, updated: isoSeconds(now), keys: {}, thresholds: {}, logs: {} };
}

function parseDate(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  const t = Date.parse(value);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}T/.test(value)) throw new CtError('USAGE', `${option}: not an RFC 3339 date-time: ${value}`, { option });
  return isoSeconds(new Date(t));
}

export interface AddKeyOptions {
  validFrom?: string;
  validUntil?: string;
  metadata?: Record<string, unknown>;
  now?: Date;
}

/** Adds an Ed25519 public key under `role` (validFrom defaults to now). USAGE when it is already there. */
export function addKey(store: TrustStore, role: TrustRole, publicKey: KeyObject, opts: AddKeyOptions = {}): TrustStore {
  if (!role) throw new CtError('USAGE', 'a role is required', {});
  if (keyAlgorithmOf(publicKey) !== 'ed25519') {
    throw new CtError('KEY_INVALID', 'trust stores hold Ed25519 keys only (SPEC §5)', { algorithm: publicKey.asymmetricKeyType });
  }
  const now = opts.now ?? new Date();
  const id = keyIdOf(publicKey);
  if ((store.keys[role] ?? []).some((k) => k.id === id)) {
    throw new CtError('USAGE', `key ${id} already has role ${role}`, { keyId: id, role });
  }
  const entry: TrustedKey = {
    id,
    algorithm: 'ed25519',
    publicKey: spkiBase64(publicKey),
    validFrom: parseDate(opts.validFrom, '--valid-from') ?? isoSeconds(now),
  };
  const until = parseDate(opts.validUntil, '--valid-until');
  if (until !== undefined) entry.validUntil = until;
  if (opts.metadata) entry.metadata = opts.metadata;
  const next = edited(store, now);
  next.keys = { ...next.keys, [role]: [...(next.keys[role] ?? []), entry] };
  return next;
}

/** Adds (or replaces) a transparency log; its key must be Ed25519. */
export function addLog(store: TrustStore, logId: string, log: { operator: string; publicKey: KeyObject; url: string }, now: Date = new Date()): TrustStore {
  if (!logId) throw new CtError('USAGE', 'a log id is required', {});
  if (keyAlgorithmOf(log.publicKey) !== 'ed25519') {
    throw new CtError('KEY_INVALID', 'transparency logs sign with Ed25519 keys', { algorithm: log.publicKey.asymmetricKeyType });
  }
  const entry: TrustedLog = { operator: log.operator, publicKey: spkiBase64(log.publicKey), url: log.url, algorithm: 'ed25519' };
  // One log under two ids would count twice towards a quorum: a key or a URL names one log.
  for (const [id, other] of Object.entries(store.logs ?? {})) {
    if (id === logId) continue;
    const same = other.publicKey === entry.publicKey ? 'key' : other.url !== undefined && normalLogUrl(other.url) === normalLogUrl(log.url) ? 'URL' : undefined;
    if (same) throw new CtError('LOG_DUPLICATE', `log ${id} (${other.operator}) already has this ${same}; one log is listed once`, { logId, existing: id, same: same.toLowerCase() });
  }
  const next = edited(store, now);
  next.logs = { ...(next.logs ?? {}), [logId]: entry };
  return next;
}

/** Starts the next release of a store: version + 1. */
export function bumpVersion(store: TrustStore, now: Date = new Date()): TrustStore {
  const next = edited(store, now);
  next.version = store.version + 1;
  return next;
}

/** Sets (or replaces) a k-of-n group; n is the number of members. Validation checks the members exist. */
export function setThreshold(store: TrustStore, name: string, k: number, members: string[], now: Date = new Date()): TrustStore {
  if (!name) throw new CtError('USAGE', 'a group name is required', {});
  if (!Number.isInteger(k) || k < 1) throw new CtError('USAGE', `k must be a positive integer, got ${k}`, { k });
  const unique = [...new Set(members)];
  if (unique.length === 0) throw new CtError('USAGE', `group ${name} needs members`, { group: name });
  if (k > unique.length) throw new CtError('USAGE', `k = ${k} exceeds the ${unique.length} members`, { k, n: unique.length });
  const next = edited(store, now);
  next.thresholds = { ...(next.thresholds ?? {}), [name]: { k, n: unique.length, algorithm: 'frost-ed25519', members: unique } };
  return next;
}

/** Adds a key id or attestation digest to the store's revocation list (idempotent). */
export function revoke(store: TrustStore, what: 'keys' | 'attestations', digest: string, now: Date = new Date()): TrustStore {
  if (!/^sha256:[0-9a-f]{64}$/.test(digest)) throw new CtError('USAGE', `${digest}: not a sha256:<hex> digest`, { digest });
  const next = edited(store, now);
  const list = next.revoked?.[what] ?? [];
  next.revoked = { ...(next.revoked ?? {}), [what]: list.includes(digest) ? list : [...list, digest] };
  return next;
}

