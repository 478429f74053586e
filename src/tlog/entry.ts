import { canonicalBytes } from '../core/jcs.js';
import { CtError } from '../core/errors.js';
import { DIGEST_RE, sha256Digest } from '../core/digest.js';

/** A VCS transparency-log entry (SPEC §6; schema `transparency-log.schema.json#/$defs/logEntry`). */
export interface AttestationBody {
  attestationDigest: string;
  subjectDigest: string;
  predicateType: string;
}

export const REVOCATION_REASONS = ['key_compromise', 'superseded', 'affiliation_changed', 'cessation', 'privilege_withdrawn', 'unspecified'] as const;
export type RevocationReason = (typeof REVOCATION_REASONS)[number];

export interface RevocationBody {
  revokedDigest: string;
  reason: RevocationReason;
  revokedBy: string;
  revokedAt?: string;
}

export type LogEntry =
  | { version: 1; timestamp: string; entryType: 'attestation'; body: AttestationBody }
  | { version: 1; timestamp: string; entryType: 'revocation'; body: RevocationBody };

/** RFC 3339 date-time with an upper-case T and Z (or a numeric offset), as JSON Schema's `date-time`. */
const RFC3339_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/;
const REVOKED_BY_RE = /^sha256:[a-f0-9]{64}$|^[a-zA-Z0-9_-]+$/;
const MAX_URI = 2048;

export function isRfc3339(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  const m = RFC3339_RE.exec(s);
  if (!m) return false;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number);
  const daysInMonth = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  if (mo < 1 || mo > 12 || d < 1 || d > daysInMonth || h > 23 || mi > 59 || se > 60) return false;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return false;
  return Number.isFinite(Date.parse(s));
}

/** The current time as the log writes it: RFC 3339, UTC, whole seconds (as the MVP producer). */
export function rfc3339Now(now = Date.now()): string {
  return new Date(Math.floor(now / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

// Logs see the same few predicate types over and over; URL parsing dominated validation.
const knownUris = new Set<string>();

function isUri(s: unknown): boolean {
  if (typeof s !== 'string' || s.length === 0 || s.length > MAX_URI) return false;
  if (knownUris.has(s)) return true;
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:[^\s]*$/.test(s)) return false;
  try {
    new URL(s);
    if (knownUris.size < 256) knownUris.add(s);
    return true;
  } catch {
    return false;
  }
}

interface Problem {
  path: string;
  message: string;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkKeys(o: Record<string, unknown>, allowed: readonly string[], where: string, problems: Problem[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) problems.push({ path: `${where}.${k}`, message: 'unknown field' });
}

function checkAttestationBody(b: Record<string, unknown>, problems: Problem[]): void {
  checkKeys(b, ['attestationDigest', 'subjectDigest', 'predicateType'], 'body', problems);
  for (const f of ['attestationDigest', 'subjectDigest'] as const) {
    if (typeof b[f] !== 'string' || !DIGEST_RE.test(b[f] as string)) problems.push({ path: `body.${f}`, message: 'must be sha256:<64 lower-case hex>' });
  }
  if (!isUri(b.predicateType)) problems.push({ path: 'body.predicateType', message: `must be an absolute URI of at most ${MAX_URI} characters` });
}

function checkRevocationBody(b: Record<string, unknown>, problems: Problem[]): void {
  checkKeys(b, ['revokedDigest', 'reason', 'revokedBy', 'revokedAt'], 'body', problems);
  if (typeof b.revokedDigest !== 'string' || !DIGEST_RE.test(b.revokedDigest)) problems.push({ path: 'body.revokedDigest', message: 'must be sha256:<64 lower-case hex>' });
  if (!(REVOCATION_REASONS as readonly unknown[]).includes(b.reason)) problems.push({ path: 'body.reason', message: `must be one of ${REVOCATION_REASONS.join(', ')}` });
  if (typeof b.revokedBy !== 'string' || b.revokedBy.length > 256 || !REVOKED_BY_RE.test(b.revokedBy)) {
    problems.push({ path: 'body.revokedBy', message: 'must be a key id (sha256:<hex>) or a name of [A-Za-z0-9_-]' });
  }
  if (b.revokedAt !== undefined && !isRfc3339(b.revokedAt)) problems.push({ path: 'body.revokedAt', message: 'must be an RFC 3339 date-time' });
}

/**
 * Strict validation: every field typed, no unknown field anywhere (an unknown field would change
 * the canonical bytes, so the log must not accept what verifiers cannot rebuild). Reports every
 * problem at once, as CtError LOG_ENTRY_INVALID with `details.problems`.
 */
export function assertLogEntry(v: unknown, where = 'entry'): asserts v is LogEntry {
  const problems: Problem[] = [];
  if (!isPlainObject(v)) {
    problems.push({ path: '', message: 'must be a JSON object' });
  } else {
    checkKeys(v, ['version', 'timestamp', 'entryType', 'body'], '', problems);
    if (v.version !== 1) problems.push({ path: 'version', message: 'must be the integer 1' });
    if (!isRfc3339(v.timestamp)) problems.push({ path: 'timestamp', message: 'must be an RFC 3339 date-time' });
    if (v.entryType !== 'attestation' && v.entryType !== 'revocation') problems.push({ path: 'entryType', message: 'must be "attestation" or "revocation"' });
    if (!isPlainObject(v.body)) problems.push({ path: 'body', message: 'must be a JSON object' });
    else if (v.entryType === 'attestation') checkAttestationBody(v.body, problems);
    else if (v.entryType === 'revocation') checkRevocationBody(v.body, problems);
  }
  if (problems.length > 0) {
    const list = problems.map((p) => `${p.path.replace(/^\./, '') || '(root)'}: ${p.message}`).join('; ');
    throw new CtError('LOG_ENTRY_INVALID', `${where}: ${list}`, { where, problems });
  }
}

/** JCS bytes of a validated entry: what the leaf hash and the SET are computed over. */
export function canonicalEntry(entry: LogEntry): Buffer {
  assertLogEntry(entry);
  return canonicalBytes(entry);
}

/** VCS attestation digest: sha256 of the JCS form of the DSSE envelope (as the MVP computes it). */
export function attestationDigestOf(envelope: unknown): string {
  return sha256Digest(canonicalBytes(envelope));
}

/**
 * The entry the upstream MVP producer logs for an attestation (SPEC §4): its timestamp is the
 * record's `integratedTime`, since bundles carry no entry body.
 */
export function attestationEntry(envelope: unknown, subjectDigest: string, predicateType: string, integratedTime: string): LogEntry {
  const entry: LogEntry = {
    version: 1,
    timestamp: integratedTime,
    entryType: 'attestation',
    body: { attestationDigest: attestationDigestOf(envelope), subjectDigest, predicateType },
  };
  assertLogEntry(entry);
  return entry;
}
