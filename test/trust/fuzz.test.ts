/**
 * Seeded fuzzing of trust-store parsing (#13 findings 3, 7, 8), fixed budget: mutations of a
 * valid store, each drawn from one hostile class — one log listed twice (same key under another
 * id/operator/URL spelling, or same URL under another key), unknown or misspelt fields anywhere
 * but free-form metadata, prototype ids, nesting up to and past the depth limit, key DER with
 * trailing bytes or another base64 spelling, and values of the wrong type at random places.
 * Whatever comes in: parseTrustStore returns a store or throws TRUST_STORE_INVALID with a bounded
 * message — never another exception — and every store it returns holds each log once (by key and
 * by URL), no unknown field, and answers prototype ids as unknown.
 */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CtError, ERROR_LIMITS } from '../../src/core/errors.js';
import { spkiBase64 } from '../../src/trust/keyid.js';
import { findKey, ownEntry, parseTrustStore } from '../../src/trust/store.js';
import { normalLogUrl } from '../../src/trust/validate.js';
import type { TrustStore } from '../../src/trust/types.js';
import { entry, group, store, testKey } from './fixtures.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SEED = 0x13_0003;
const RUNS = 250;
const keys = [testKey(), testKey(), testKey()];
const logKeys = [testKey(), testKey()];

function base(): Json {
  const s = store({ keys: { builders: [entry(keys[0]), entry(keys[1])], reviewers: [entry(keys[2])] }, thresholds: { builders: group([keys[0], keys[1]], 2) } }) as Json;
  s.logs = {
    'log-a': { operator: 'Op A', publicKey: spkiBase64(logKeys[0].publicKey), url: 'https://log-a.example', algorithm: 'ed25519' },
    'log-b': { operator: 'Op B', publicKey: spkiBase64(logKeys[1].publicKey), url: 'https://log-b.example/v1', algorithm: 'ed25519' },
  };
  s.keys.builders[0].metadata = { owner: 'ci', description: 'build key' };
  return s;
}

const KNOWN: Record<string, Set<string>> = {
  root: new Set(['$schema', 'version', 'id', 'updated', 'keys', 'thresholds', 'logs', 'revocations']),
  key: new Set(['id', 'algorithm', 'publicKey', 'validFrom', 'validUntil', 'metadata']),
  log: new Set(['operator', 'publicKey', 'url', 'algorithm']),
  group: new Set(['k', 'n', 'algorithm', 'members']),
};
const PROTO_IDS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf'];

/** One hostile edit of the base store, as JSON text, and whether it must be refused. */
type Case = { what: string; text: string; mustRefuse: boolean };

const fieldName = fc.oneof(fc.constantFrom('validUntill', 'validunitl', 'operater', 'urls', 'Members', 'extra', '__proto__', 'constructor'), fc.string({ minLength: 1, maxLength: 12 }));
const anyValue = fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.string({ maxLength: 20 }), fc.constant([]), fc.constant({}), fc.constant({ k: 1 }));

const duplicateLog = fc.record({
  id: fc.oneof(fc.constantFrom('log-c', 'LOG-A', 'log-a ', ...PROTO_IDS), fc.string({ minLength: 1, maxLength: 10 })),
  operator: fc.constantFrom('Op A', 'Op C', 'op a', ''),
  sameKey: fc.boolean(),
  url: fc.constantFrom('https://log-a.example', 'HTTPS://LOG-A.EXAMPLE/', 'https://log-a.example//', 'https://log-c.example'),
}).map(({ id, operator, sameKey, url }): Case => {
  const s = base();
  const other = testKey();
  const clash = sameKey || url !== 'https://log-c.example';
  if (id === 'log-a' || id === 'log-b') return { what: 'no-op', text: JSON.stringify(s), mustRefuse: false };
  const log = { operator, publicKey: sameKey ? s.logs['log-a'].publicKey : spkiBase64(other.publicKey), url, algorithm: 'ed25519' };
  // Written as text so that "__proto__" is an own key of the file, as an attacker would send it.
  const text = JSON.stringify(s).replace('"logs":{', `"logs":{${JSON.stringify(id)}:${JSON.stringify(log)},`);
  return { what: `log ${JSON.stringify(id)} sameKey=${sameKey} url=${url}`, text, mustRefuse: clash };
});

const unknownField = fc.record({ where: fc.constantFrom('root', 'key', 'log', 'group', 'metadata'), name: fieldName, value: anyValue }).map(({ where, name, value }): Case => {
  const s = base();
  const target = where === 'root' ? s : where === 'key' ? s.keys.builders[1] : where === 'log' ? s.logs['log-b'] : where === 'group' ? s.thresholds.builders : s.keys.builders[0].metadata;
  const known = where === 'metadata' || KNOWN[where].has(name);
  if (known) return { what: `${where}.${name} (known)`, text: JSON.stringify(s), mustRefuse: false };
  const text = JSON.stringify(target === s ? s : s).replace(JSON.stringify(target), JSON.stringify(target).replace(/^\{/, `{${JSON.stringify(name)}:${JSON.stringify(value)},`));
  return { what: `${where}.${JSON.stringify(name)}`, text, mustRefuse: true };
});

const protoIds = fc.record({ id: fc.constantFrom(...PROTO_IDS), where: fc.constantFrom('keys', 'thresholds', 'logs') }).map(({ id, where }): Case => {
  const s = base();
  const inner = where === 'keys' ? [entry(testKey())] : where === 'thresholds' ? group([keys[2]], 1) : { operator: 'Op P', publicKey: spkiBase64(testKey().publicKey), url: `https://${id.toLowerCase().replace(/_/g, 'x')}.example`, algorithm: 'ed25519' };
  const text = JSON.stringify(s).replace(`"${where}":{`, `"${where}":{${JSON.stringify(id)}:${JSON.stringify(inner)},`);
  return { what: `${where}.${id}`, text, mustRefuse: false };
});

const nesting = fc.integer({ min: 1, max: 200 }).map((d): Case => {
  const text = JSON.stringify(base()).replace('"owner":"ci"', `"owner":"ci","deep":${'['.repeat(d)}${']'.repeat(d)}`);
  return { what: `metadata nested ${d}`, text, mustRefuse: d + 4 > 64 };
});

const keyBytes = fc.record({ where: fc.constantFrom('key', 'log'), how: fc.constantFrom('trailing', 'unpadded', 'junk-bits') }).map(({ where, how }): Case => {
  const s = base();
  const holder = where === 'key' ? s.keys.builders[1] : s.logs['log-b'];
  const der = Buffer.from(holder.publicKey, 'base64');
  // junk-bits: the same DER spelt another way (an unused low bit of the last character set).
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const pad = holder.publicKey.length - holder.publicKey.replace(/=+$/, '').length;
  const last = holder.publicKey.length - 1 - pad;
  const respelt = `${holder.publicKey.slice(0, last)}${B64[B64.indexOf(holder.publicKey[last]) ^ 1]}${'='.repeat(pad)}`;
  holder.publicKey = how === 'trailing' ? Buffer.concat([der, Buffer.from([0, 1])]).toString('base64') : how === 'unpadded' ? holder.publicKey.replace(/=+$/, '') : respelt;
  expect(how === 'junk-bits' ? Buffer.from(holder.publicKey, 'base64').equals(der) : true).toBe(true);
  return { what: `${where} publicKey ${how}`, text: JSON.stringify(s), mustRefuse: true };
});

const retype = fc.record({ path: fc.constantFrom('version', 'id', 'updated', 'keys', 'thresholds', 'logs', 'keys.builders', 'keys.builders.0', 'keys.builders.0.validFrom', 'thresholds.builders.k', 'thresholds.builders.members', 'logs.log-a', 'logs.log-a.url'), value: anyValue }).map(({ path, value }): Case => {
  const s = base();
  const parts = path.split('.');
  let o = s;
  for (const p of parts.slice(0, -1)) o = o[p];
  o[parts.at(-1)!] = value;
  return { what: `${path} = ${JSON.stringify(value)}`, text: JSON.stringify(s), mustRefuse: false };
});

function outcome(c: Case): { store?: TrustStore; code?: string; bounded?: boolean } {
  try {
    return { store: parseTrustStore(c.text) };
  } catch (e) {
    if (!(e instanceof CtError)) throw new Error(`${c.what}: not a CtError: ${String(e)}`);
    return { code: e.code, bounded: e.message.length <= ERROR_LIMITS.messageChars + 200 && JSON.stringify(e.details).length <= 64 * 1024 };
  }
}

/** What every accepted store must hold. */
function invariants(s: TrustStore, what: string): void {
  const keysSeen = new Set<string>();
  const urls = new Set<string>();
  for (const [id, log] of Object.entries(s.logs ?? {})) {
    expect({ what, id, dupKey: keysSeen.has(log.publicKey), dupUrl: log.url !== undefined && urls.has(normalLogUrl(log.url)) }).toEqual({ what, id, dupKey: false, dupUrl: false });
    keysSeen.add(log.publicKey);
    if (log.url !== undefined) urls.add(normalLogUrl(log.url));
    for (const k of Object.keys(log)) expect({ what, field: k, known: KNOWN.log.has(k) }).toEqual({ what, field: k, known: true });
  }
  for (const k of Object.keys(s)) expect({ what, field: k, known: KNOWN.root.has(k) }).toEqual({ what, field: k, known: true });
  for (const entries of Object.values(s.keys)) for (const e of entries) for (const k of Object.keys(e)) expect({ what, field: k, known: KNOWN.key.has(k) }).toEqual({ what, field: k, known: true });
  for (const g of Object.values(s.thresholds ?? {})) for (const k of Object.keys(g)) expect({ what, field: k, known: KNOWN.group.has(k) }).toEqual({ what, field: k, known: true });
  // Prototype ids are unknown unless the file lists them.
  for (const id of PROTO_IDS) {
    const listed = (m: object | undefined) => m !== undefined && Object.keys(m).includes(id);
    if (!listed(s.logs)) expect(ownEntry(s.logs, id)).toBeUndefined();
    if (!listed(s.thresholds)) expect(ownEntry(s.thresholds, id)).toBeUndefined();
    expect(findKey(s, id)).toBeUndefined();
  }
}

describe('trust-store fuzzing (seeded, fixed budget)', () => {
  it('the base store is accepted (so refusals below come from the edits)', () => {
    expect(outcome({ what: 'base', text: JSON.stringify(base()), mustRefuse: false }).store).toBeDefined();
  });

  for (const [name, arb] of [
    ['one log listed twice', duplicateLog],
    ['unknown fields', unknownField],
    ['prototype ids', protoIds],
    ['nesting', nesting],
    ['key bytes', keyBytes],
    ['values of the wrong type', retype],
  ] as const) {
    it(`${name}: TRUST_STORE_INVALID (bounded) or a store that keeps the invariants; never another exception`, () => {
      fc.assert(
        fc.property(arb, (c) => {
          const r = outcome(c);
          if (r.store) {
            expect({ what: c.what, accepted: true, mustRefuse: c.mustRefuse }).toEqual({ what: c.what, accepted: true, mustRefuse: false });
            invariants(r.store, c.what);
          } else {
            expect({ what: c.what, code: r.code, bounded: r.bounded }).toEqual({ what: c.what, code: 'TRUST_STORE_INVALID', bounded: true });
          }
        }),
        { seed: SEED, numRuns: RUNS },
      );
    });
  }
});
