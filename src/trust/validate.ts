/**
 * Trust-store validation in two stages, each reporting every bad field at once:
 *  1. structure — Ajv (draft 2020-12) with the reference VCS schema plus our extensions
 *     (`revoked`, `signatures`), one deviation: `logs.minProperties: 3` is dropped, because MVP
 *     stores list one log and SPEC §4 leaves log coverage to the policy's `logQuorum`, and one
 *     addition: unknown fields are refused everywhere but in the free-form `metadata` objects (a typo such as
 *     `validUntill` would otherwise make a key never expire);
 *  2. meaning — what a schema cannot say: each key id is the SHA-256 of its key's SPKI DER (the
 *     DER exactly, no trailing bytes), keys and log keys really are Ed25519, no two logs share a
 *     key or a URL (a log counts once towards a quorum, whatever its ids and operator names), dates parse and windows are not empty, thresholds name existing
 *     keys with k ≤ n ≤ |members|.
 * Failures are TRUST_STORE_INVALID with `details.path` (JSON Pointer of the first bad field) and
 * `details.issues` (all of them).
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsImport from 'ajv-formats';
import { CtError } from '../core/errors.js';
import { keyIdOf } from './keyid.js';
import { TRUST_STORE_SCHEMA } from './schema.js';
import type { TrustStore } from './types.js';

export interface TrustStoreIssue {
  path: string; // JSON Pointer (RFC 6901); '' is the whole document
  message: string;
}

// ajv-formats is CommonJS; under NodeNext its default import is typed as the module object.
const addFormats = ((addFormatsImport as unknown as { default?: unknown }).default ?? addFormatsImport) as (ajv: Ajv2020) => Ajv2020;

const DIGEST = '^sha256:[a-f0-9]{64}$';
const BASE64 = '^[A-Za-z0-9+/]*={0,2}$';

/** Our additions to the VCS document: revocation lists and signed updates (see docs/keys-and-trust-stores.md). */
const EXTENSIONS_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: {
    revoked: {
      type: 'object',
      additionalProperties: false,
      properties: {
        keys: { type: 'array', items: { type: 'string', pattern: DIGEST } },
        attestations: { type: 'array', items: { type: 'string', pattern: DIGEST } },
      },
    },
    signatures: {
      type: 'array',
      items: {
        type: 'object',
        required: ['keyid', 'sig'],
        additionalProperties: false,
        properties: { keyid: { type: 'string', pattern: DIGEST }, sig: { type: 'string', minLength: 1, pattern: BASE64 } },
      },
    },
  },
};

let compiled: { base: ValidateFunction; ext: ValidateFunction } | undefined;

function validators(): { base: ValidateFunction; ext: ValidateFunction } {
  if (compiled) return compiled;
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  const schema = structuredClone(TRUST_STORE_SCHEMA) as { properties: Record<string, Record<string, unknown>>; additionalProperties?: boolean; $defs: Record<string, { additionalProperties?: boolean }> };
  delete schema.properties.logs.minProperties; // MVP stores have one log (see header)
  // Unknown fields are refused (see header); `revoked` and `signatures` are checked by EXTENSIONS_SCHEMA.
  schema.properties.revoked = {};
  schema.properties.signatures = {};
  schema.properties.metadata = { type: 'object' }; // free-form, like a key's metadata (the VCS samples use it)
  schema.additionalProperties = false;
  for (const def of ['keyEntry', 'thresholdGroup', 'logOperator']) schema.$defs[def].additionalProperties = false;
  compiled = { base: ajv.compile(schema), ext: ajv.compile(EXTENSIONS_SCHEMA) };
  return compiled;
}

export function pointer(...parts: (string | number)[]): string {
  return parts.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

function ajvIssue(e: ErrorObject): TrustStoreIssue {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'required') return { path: e.instancePath + pointer(String(p.missingProperty)), message: 'is required' };
  if (e.keyword === 'additionalProperties') return { path: e.instancePath + pointer(String(p.additionalProperty)), message: 'is not allowed here' };
  return { path: e.instancePath, message: e.message ?? e.keyword };
}

/**
 * Strict base64 SPKI DER: canonical base64 only (Buffer would silently skip junk), and exactly the
 * DER of the key (OpenSSL ignores bytes after the SPKI; those would give one key many ids).
 */
export function spkiFrom(b64: string): KeyObject | undefined {
  const der = Buffer.from(b64, 'base64');
  if (der.length === 0 || der.toString('base64') !== b64) return undefined;
  try {
    const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    return (key.export({ type: 'spki', format: 'der' }) as Buffer).equals(der) ? key : undefined;
  } catch {
    return undefined;
  }
}

/** A log URL compared as the log it names: lower-case scheme and host, no trailing slash. */
export function normalLogUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}${u.search}`;
  } catch {
    return url;
  }
}

function checkMeaning(store: TrustStore): TrustStoreIssue[] {
  const issues: TrustStoreIssue[] = [];
  const add = (path: string, message: string): void => {
    issues.push({ path, message });
  };
  if (store.updated !== undefined && Number.isNaN(Date.parse(store.updated))) add(pointer('updated'), 'is not a date');

  const allIds = new Set<string>();
  for (const [role, entries] of Object.entries(store.keys)) {
    const seen = new Set<string>();
    entries.forEach((k, i) => {
      const at = (field: string): string => pointer('keys', role, i, field);
      const key = spkiFrom(k.publicKey);
      if (!key) add(at('publicKey'), 'is not base64 SPKI DER of a public key');
      else if (key.asymmetricKeyType !== 'ed25519') add(at('publicKey'), `is a ${key.asymmetricKeyType} key; algorithm says ed25519`);
      else if (k.id !== keyIdOf(key)) add(at('id'), `does not match the key (expected ${keyIdOf(key)})`);
      if (seen.has(k.id)) add(at('id'), `key ${k.id} is listed twice in role ${role}`);
      seen.add(k.id);
      allIds.add(k.id);
      const from = Date.parse(k.validFrom);
      if (Number.isNaN(from)) add(at('validFrom'), 'is not a date');
      if (k.validUntil !== undefined) {
        const until = Date.parse(k.validUntil);
        if (Number.isNaN(until)) add(at('validUntil'), 'is not a date');
        else if (!Number.isNaN(from) && until <= from) add(at('validUntil'), 'is not after validFrom: the key would never be valid');
      }
    });
  }

  for (const [name, g] of Object.entries(store.thresholds ?? {})) {
    const at = (field: string, ...rest: (string | number)[]): string => pointer('thresholds', name, field, ...rest);
    // Own roles only: a group named __proto__ or constructor has no role of that name (it found
    // Object.prototype here and threw a TypeError).
    const roleIds = Object.hasOwn(store.keys, name) ? new Set(store.keys[name].map((k) => k.id)) : undefined;
    const members = new Set<string>();
    g.members.forEach((m, i) => {
      if (members.has(m)) add(at('members', i), `member ${m} is listed twice`);
      members.add(m);
      if (!allIds.has(m)) add(at('members', i), `member ${m} is not a key of this trust store`);
      else if (roleIds && !roleIds.has(m)) add(at('members', i), `member ${m} is not a key of role ${name}`);
    });
    if (g.k > g.n) add(at('k'), `k = ${g.k} exceeds n = ${g.n}`);
    if (g.n > g.members.length) add(at('n'), `n = ${g.n} exceeds the ${g.members.length} members listed`);
  }

  const logKeys = new Map<string, string>();
  const logUrls = new Map<string, string>();
  for (const [id, log] of Object.entries(store.logs ?? {})) {
    const key = spkiFrom(log.publicKey);
    if (!key) add(pointer('logs', id, 'publicKey'), 'is not base64 SPKI DER of a public key');
    else if (key.asymmetricKeyType !== 'ed25519') add(pointer('logs', id, 'publicKey'), `is a ${key.asymmetricKeyType} key; logs sign with Ed25519`);
    const other = logKeys.get(log.publicKey);
    if (other !== undefined) add(pointer('logs', id, 'publicKey'), `is the key of log ${other} too: one log listed twice would count twice towards a quorum`);
    else logKeys.set(log.publicKey, id);
    if (log.url !== undefined) {
      const u = normalLogUrl(log.url);
      const same = logUrls.get(u);
      if (same !== undefined) add(pointer('logs', id, 'url'), `is the URL of log ${same} too: one log listed twice would count twice towards a quorum`);
      else logUrls.set(u, id);
    }
  }
  return issues;
}

/** All problems of a candidate trust store ([] when it is valid). */
export function trustStoreIssues(value: unknown): TrustStoreIssue[] {
  const { base, ext } = validators();
  const issues: TrustStoreIssue[] = [];
  if (!base(value)) issues.push(...(base.errors ?? []).map(ajvIssue));
  if (!ext(value)) issues.push(...(ext.errors ?? []).map(ajvIssue));
  if (issues.length > 0) return issues;
  return checkMeaning(value as TrustStore);
}

/** Throws TRUST_STORE_INVALID (details.path, details.issues) unless `value` is a valid trust store. */
export function validateTrustStore(value: unknown, where = 'trust store'): asserts value is TrustStore {
  const issues = trustStoreIssues(value);
  if (issues.length === 0) return;
  const first = issues[0];
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : '';
  throw new CtError('TRUST_STORE_INVALID', `${where}: ${first.path || '/'} ${first.message}${more}`, { where, path: first.path, issues });
}
