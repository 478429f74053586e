/** Real keys and stores for the trust tests: every store here validates unless a test breaks it. */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keyIdOf, spkiBase64 } from '../../src/trust/keyid.js';
import type { TrustStore, TrustedKey, ThresholdGroup } from '../../src/trust/types.js';

export const REFERENCE = join(process.cwd(), '..', 'shared', 'reference');
export const MVP_STORE = join(REFERENCE, 'samples', 'vcs-mvp', 'valid-mvp-hello', 'trust-store.json');
export const SCHEMA = join(REFERENCE, 'verified-container-spec', 'schema', 'trust-store.schema.json');

export interface TestKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  id: string;
}

export function testKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, id: keyIdOf(publicKey) };
}

export function entry(k: TestKey, validFrom = '2024-01-01T00:00:00Z', validUntil?: string): TrustedKey {
  const e: TrustedKey = { id: k.id, algorithm: 'ed25519', publicKey: spkiBase64(k.publicKey), validFrom };
  if (validUntil) e.validUntil = validUntil;
  return e;
}

export function store(parts: { version?: number; keys?: Record<string, TrustedKey[]>; thresholds?: Record<string, ThresholdGroup> } = {}): TrustStore {
  const log = testKey();
  return {
    version: parts.version ?? 1,
    id: 'test-store',
    updated: '2026-01-01T00:00:00Z',
    keys: parts.keys ?? {},
    thresholds: parts.thresholds ?? {},
    logs: { 'log-a': { operator: 'Op A', publicKey: spkiBase64(log.publicKey), url: 'https://log-a.example', algorithm: 'ed25519' } },
  };
}

export function group(members: TestKey[], k: number, n = members.length): ThresholdGroup {
  return { k, n, algorithm: 'frost-ed25519', members: members.map((m) => m.id) };
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'ct-trust-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
