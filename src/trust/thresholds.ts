/**
 * k-of-n threshold groups (SPEC §4/§5). VCS names the group algorithm `frost-ed25519`, but its
 * verifier counts signatures: a group is met when at least k DISTINCT members, each currently
 * valid and not revoked, produced verified signatures. Callers pass the key ids whose signatures
 * they already verified; this module only counts.
 */
import { CtError } from '../core/errors.js';
import { findKey, isKeyRevoked, keyInRole, keyValidity, ownEntry } from './store.js';
import type { TrustStore, TrustedKey } from './types.js';

export type IgnoredReason = 'not-a-member' | 'expired' | 'not-yet-valid' | 'revoked' | 'duplicate';

export interface ThresholdResult {
  group: string;
  met: boolean;
  k: number;
  /** Number of distinct, valid members among the signers. */
  distinct: number;
  /** The group's member key ids. */
  members: string[];
  /** The signers that counted. */
  counted: string[];
  /** Signers that did not count, and why. */
  ignored: { keyId: string; reason: IgnoredReason }[];
}

/**
 * The entry that decides a member's validity: the one in the role named like the group when there
 * is such a role (e.g. `trust-store-updaters`), else the key's first entry.
 */
function memberEntry(store: TrustStore, group: string, keyId: string): TrustedKey | undefined {
  return ownEntry(store.keys, group) ? keyInRole(store, group, keyId) : findKey(store, keyId)?.key;
}

/**
 * Counts distinct valid member signers of `groupName`. An unknown group fails closed:
 * THRESHOLD_NOT_MET with details.reason `unknown-group`.
 */
export function evaluateThreshold(store: TrustStore, groupName: string, signerKeyIds: Iterable<string>, now: Date = new Date()): ThresholdResult {
  const group = ownEntry(store.thresholds, groupName);
  if (!group) {
    throw new CtError('THRESHOLD_NOT_MET', `trust store ${store.id ?? ''} defines no threshold group ${groupName}`, { group: groupName, reason: 'unknown-group' });
  }
  const members = new Set(group.members);
  const seen = new Set<string>();
  const counted: string[] = [];
  const ignored: ThresholdResult['ignored'] = [];
  for (const keyId of signerKeyIds) {
    if (seen.has(keyId)) {
      ignored.push({ keyId, reason: 'duplicate' });
      continue;
    }
    seen.add(keyId);
    const entry = members.has(keyId) ? memberEntry(store, groupName, keyId) : undefined;
    if (!entry) {
      ignored.push({ keyId, reason: 'not-a-member' });
      continue;
    }
    if (isKeyRevoked(store, keyId)) {
      ignored.push({ keyId, reason: 'revoked' });
      continue;
    }
    const validity = keyValidity(entry, now);
    if (validity !== 'valid') {
      ignored.push({ keyId, reason: validity });
      continue;
    }
    counted.push(keyId);
  }
  return { group: groupName, met: counted.length >= group.k, k: group.k, distinct: counted.length, members: [...group.members], counted, ignored };
}

/** evaluateThreshold, throwing THRESHOLD_NOT_MET (details: the result) when the group is not met. */
export function assertThreshold(store: TrustStore, groupName: string, signerKeyIds: Iterable<string>, now: Date = new Date()): ThresholdResult {
  const r = evaluateThreshold(store, groupName, signerKeyIds, now);
  if (!r.met) {
    throw new CtError('THRESHOLD_NOT_MET', `threshold group ${groupName}: ${r.distinct} of the required ${r.k} distinct valid signers`, { ...r });
  }
  return r;
}
