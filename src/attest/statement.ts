/**
 * in-toto v1 Statements: builders for what `ct sign` attests and a strict validator for what a
 * verifier reads. A statement about a .ctp names several subjects (SPEC §2 "Everything in the
 * bundle is signed"): the image by its manifest digest, then `manifest.toml` and every file under
 * `security/`, each by its path inside the .ctp and its sha256.
 */
import { CtError } from '../core/errors.js';
import { isDigest } from '../core/digest.js';
import { assertJsonDepth } from '../core/json.js';

export const STATEMENT_TYPE_V1 = 'https://in-toto.io/Statement/v1';
export const PREDICATE_SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const PREDICATE_SPDX_DOCUMENT = 'https://spdx.dev/Document';
/** What VCS requires of every image unless a policy says otherwise (SPEC §4). */
export const DEFAULT_REQUIRED_PREDICATES: readonly string[] = [PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_SPDX_DOCUMENT];

export interface Subject {
  name: string;
  digest: Record<string, string>;
}

export interface Statement {
  _type: string;
  subject: Subject[];
  predicateType: string;
  predicate: unknown;
}

/** A file of the .ctp that an attestation must cover: its path and bare hex sha256. */
export interface CoveredFile {
  name: string;
  sha256: string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Subjects for a .ctp: the image first (so that a reader taking "the first subject" gets it), then files sorted by name. */
export function ctpSubjects(imageName: string, imageDigest: string, files: CoveredFile[]): Subject[] {
  if (!isDigest(imageDigest)) throw new CtError('MANIFEST_INVALID', `image digest is not sha256:<64 hex>: ${imageDigest}`, { imageDigest });
  const out: Subject[] = [{ name: imageName, digest: { sha256: imageDigest.slice(7) } }];
  const seen = new Set<string>();
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (!HEX64.test(f.sha256)) throw new CtError('DIGEST_MISMATCH', `${f.name}: sha256 is not 64 hex`, { name: f.name });
    if (seen.has(f.name)) continue;
    seen.add(f.name);
    out.push({ name: f.name, digest: { sha256: f.sha256 } });
  }
  return out;
}

export function buildStatement(subject: Subject[], predicateType: string, predicate: unknown): Statement {
  const st = { _type: STATEMENT_TYPE_V1, subject, predicateType, predicate };
  assertStatement(st, 'statement');
  return st;
}

/**
 * Strict structural check of a statement from untrusted bytes (MALFORMED_BUNDLE): `_type` is
 * in-toto v1, at least one subject, every subject has a string name and a sha256 of 64 lowercase
 * hex (other algorithms may sit beside it), and predicateType is a non-empty string.
 */
export function assertStatement(v: unknown, where = 'statement'): asserts v is Statement {
  const fail = (field: string, what: string): never => {
    throw new CtError('MALFORMED_BUNDLE', `${where}${field}: ${what}`, { where: `${where}${field}` });
  };
  if (!v || typeof v !== 'object' || Array.isArray(v)) fail('', 'not a JSON object');
  const s = v as Record<string, unknown>;
  if (s._type !== STATEMENT_TYPE_V1) fail('._type', `must be ${STATEMENT_TYPE_V1}`);
  if (!Array.isArray(s.subject) || s.subject.length === 0) fail('.subject', 'must be a non-empty array');
  (s.subject as unknown[]).forEach((sub, i) => {
    const o = sub as Record<string, unknown> | null;
    if (!o || typeof o !== 'object' || Array.isArray(o)) fail(`.subject[${i}]`, 'not an object');
    if (o!.name !== undefined && typeof o!.name !== 'string') fail(`.subject[${i}].name`, 'not a string');
    const d = o!.digest as Record<string, unknown> | null;
    if (!d || typeof d !== 'object' || Array.isArray(d)) fail(`.subject[${i}].digest`, 'not an object');
    if (typeof d!.sha256 !== 'string' || !HEX64.test(d!.sha256)) fail(`.subject[${i}].digest.sha256`, 'must be 64 lowercase hex');
    for (const [alg, val] of Object.entries(d!)) if (typeof val !== 'string') fail(`.subject[${i}].digest.${alg}`, 'not a string');
  });
  if (typeof s.predicateType !== 'string' || s.predicateType.length === 0) fail('.predicateType', 'must be a non-empty string');
}

/**
 * Parses statement bytes (the decoded DSSE payload), nested at most MAX_JSON_DEPTH deep like every
 * other JSON input: its predicate is kept in the evidence, which exports and previews read again.
 */
export function parseStatement(bytes: Uint8Array, where = 'statement'): Statement {
  let v: unknown;
  const text = (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString('utf8');
  assertJsonDepth(text, where, 'MALFORMED_BUNDLE');
  try {
    v = JSON.parse(text);
  } catch {
    throw new CtError('MALFORMED_BUNDLE', `${where}: payload is not JSON`, { where });
  }
  assertStatement(v, where);
  return v;
}

/** Whether a statement names the image (`sha256:<hex>`) among its subjects. */
export function statementNamesImage(st: Statement, imageDigest: string): boolean {
  const hex = imageDigest.slice(7);
  return st.subject.some((s) => s.digest.sha256 === hex);
}
