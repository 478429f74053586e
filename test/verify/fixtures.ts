/**
 * Real signed VCS fixtures for the verifier tests: Ed25519 keys, in-memory RFC 6962 logs (the
 * tlog module's MerkleTree and SET signing), trust stores and bundles. Every fixture verifies;
 * negative tests change exactly one thing.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { keyIdOf, spkiBase64 } from '../../src/trust/keyid.js';
import { MerkleTree } from '../../src/tlog/tree.js';
import { signSet } from '../../src/tlog/set.js';
import { canonicalBytes } from '../../src/core/jcs.js';
import { sha256Digest, sha256Hex } from '../../src/core/digest.js';
import { trustStoreDigest } from '../../src/trust/store.js';
import type { TrustStore } from '../../src/trust/types.js';
import { INTOTO_PAYLOAD_TYPE, pae, type DsseEnvelope } from '../../src/attest/dsse.js';
import { buildStatement, ctpSubjects, PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_SPDX_DOCUMENT, type Subject } from '../../src/attest/statement.js';
import { signStatement } from '../../src/attest/sign.js';
import { attestationDigest, attestationLogEntry, buildVcsBundle, type VcsBundle, type VcsLogEntry } from '../../src/attest/vcs-bundle.js';
import type { TrustMaterial } from '../../src/verify/report.js';

export interface TestKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  keyId: string;
  spki: string;
}

export function makeKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, keyId: keyIdOf(publicKey), spki: spkiBase64(publicKey) };
}

/** An in-memory log with a few unrelated entries first, so that proofs have a real path. */
export class MemLog {
  readonly key = makeKey();
  readonly tree = new MerkleTree();
  constructor(readonly id: string, readonly operator: string, filler = 3) {
    for (let i = 0; i < filler; i++) this.tree.append(Buffer.from(`${id} filler ${i}`));
  }

  record(env: DsseEnvelope, imageDigest: string, predicateType: string, time: string): VcsLogEntry {
    const bytes = canonicalBytes(attestationLogEntry(attestationDigest(env), imageDigest, predicateType, time));
    const index = this.tree.append(bytes);
    // A couple of later entries: the proof is taken at the tree size after them.
    this.tree.append(Buffer.from(`${this.id} later ${index}`));
    const treeSize = this.tree.size;
    return {
      logId: this.id,
      logIndex: index,
      integratedTime: time,
      inclusionProof: {
        logIndex: index,
        rootHash: this.tree.root(treeSize).toString('hex'),
        treeSize,
        hashes: this.tree.inclusionProof(index, treeSize).map((h) => h.toString('hex')),
      },
      signedEntryTimestamp: signSet(bytes, this.key.privateKey),
    };
  }
}

export const IMAGE_DIGEST = sha256Digest('test image manifest');

export interface StoreOptions {
  signers: { key: TestKey; role?: string; validFrom?: string; validUntil?: string }[];
  logs: MemLog[];
  thresholds?: TrustStore['thresholds'];
  revoked?: TrustStore['revoked'];
}

export function makeStore(o: StoreOptions): TrustStore {
  const keys: TrustStore['keys'] = {};
  for (const s of o.signers) {
    (keys[s.role ?? 'builders'] ??= []).push({
      id: s.key.keyId,
      algorithm: 'ed25519',
      publicKey: s.key.spki,
      validFrom: s.validFrom ?? '2024-01-01T00:00:00Z',
      ...(s.validUntil ? { validUntil: s.validUntil } : {}),
    });
  }
  const logs: NonNullable<TrustStore['logs']> = {};
  for (const l of o.logs) logs[l.id] = { operator: l.operator, publicKey: l.key.spki, url: `https://${l.id}.example`, algorithm: 'ed25519' };
  return {
    version: 1,
    id: 'test-store',
    updated: '2026-01-01T00:00:00Z',
    keys,
    thresholds: o.thresholds ?? {},
    logs,
    ...(o.revoked ? { revoked: o.revoked } : {}),
  };
}

export function trustOf(store: TrustStore): TrustMaterial {
  return { store, storeDigest: trustStoreDigest(store) };
}

export interface PredicateSpec {
  type: string;
  predicate: unknown;
}

export const DEFAULT_PREDICATES: PredicateSpec[] = [
  { type: PREDICATE_SLSA_PROVENANCE_V1, predicate: { buildDefinition: { buildType: 'https://cerro-torre.dev/test' }, runDetails: { builder: { id: 'test' } } } },
  { type: PREDICATE_SPDX_DOCUMENT, predicate: { spdxVersion: 'SPDX-2.3', name: 'test' } },
];

/** Signs an envelope with the legacy PAE (base64 text), as the upstream MVP producer does. */
export function signLegacy(subject: Subject[], predicateType: string, predicate: unknown, key: TestKey): DsseEnvelope {
  const payload = Buffer.from(JSON.stringify(buildStatement(subject, predicateType, predicate))).toString('base64');
  const sig = sign(null, pae(INTOTO_PAYLOAD_TYPE, Buffer.from(payload, 'utf8')), key.privateKey);
  return { payloadType: INTOTO_PAYLOAD_TYPE, payload, signatures: [{ keyid: key.keyId, sig: sig.toString('base64') }] };
}

export interface BundleOptions {
  imageDigest?: string;
  signers: TestKey[];
  logs: MemLog[];
  predicates?: PredicateSpec[];
  files?: { name: string; sha256: string }[];
  time?: string;
  legacy?: boolean;
}

/** A signed bundle: one attestation per predicate, each recorded in every log. */
export function makeBundle(o: BundleOptions): { bundle: VcsBundle; bytes: Buffer } {
  const imageDigest = o.imageDigest ?? IMAGE_DIGEST;
  const time = o.time ?? '2026-11-26T00:00:00Z';
  const subjects = ctpSubjects('test/app:1.0', imageDigest, o.files ?? []);
  const envelopes = (o.predicates ?? DEFAULT_PREDICATES).map((p) => {
    if (o.legacy) return signLegacy(subjects, p.type, p.predicate, o.signers[0]);
    let env = signStatement(buildStatement(subjects, p.type, p.predicate), o.signers[0].privateKey);
    for (const k of o.signers.slice(1)) {
      const more = signStatement(buildStatement(subjects, p.type, p.predicate), k.privateKey);
      env = { ...env, signatures: [...env.signatures, ...more.signatures] };
    }
    return env;
  });
  const entries: VcsLogEntry[] = [];
  for (const log of o.logs) for (const [i, env] of envelopes.entries()) entries.push(log.record(env, imageDigest, (o.predicates ?? DEFAULT_PREDICATES)[i].type, time));
  const bundle = buildVcsBundle(envelopes, entries, { producer: 'test', createdAt: time });
  return { bundle, bytes: Buffer.from(JSON.stringify(bundle)) };
}

export function bytesOf(b: unknown): Buffer {
  return Buffer.from(JSON.stringify(b));
}

export function clone<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}

export { sha256Hex };
