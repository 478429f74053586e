// The trust store the deploy benchmarks share: one builder key and the benchmark's logs.
import type { KeyObject } from 'node:crypto';
import { keyIdOf, spkiBase64 } from '../src/trust/keyid.js';

export interface BenchLog { logId: string; operator: string; publicKey: string; url: string }

/** The trust-store document (JSON text) trusting `builder` and every log in `logs`. */
export function benchTrustStoreJson(builder: KeyObject, logs: BenchLog[]): string {
  return JSON.stringify({
    version: 1, id: 'bench', updated: '2026-01-01T00:00:00Z',
    keys: { builders: [{ id: keyIdOf(builder), algorithm: 'ed25519', publicKey: spkiBase64(builder), validFrom: '2024-01-01T00:00:00Z' }] },
    thresholds: {},
    logs: Object.fromEntries(logs.map((l) => [l.logId, { operator: l.operator, publicKey: l.publicKey, url: l.url, algorithm: 'ed25519' }])),
  });
}
