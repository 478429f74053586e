/**
 * The smallest in-toto v1 Statement builder the signer needs. `src/attest/` builds the real
 * predicates (SLSA provenance, SPDX); this only shapes and checks the envelope payload.
 */
import { CtError } from '../core/errors.js';
import { isDigest } from '../core/digest.js';

export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';

export interface InTotoSubject { name: string; digest: Record<string, string> }
export interface InTotoStatement {
  _type: string;
  subject: InTotoSubject[];
  predicateType: string;
  predicate?: unknown;
}

/** Subject for a `sha256:<hex>` digest (an image manifest digest, a file digest). */
export function subjectFor(name: string, digest: string): InTotoSubject {
  if (!isDigest(digest)) throw new CtError('USAGE', `subject ${name}: not a sha256 digest: ${digest}`, { name, digest });
  return { name, digest: { sha256: digest.slice(7) } };
}

export function buildStatement(subjects: InTotoSubject[], predicateType: string, predicate: unknown = {}): InTotoStatement {
  const s: InTotoStatement = { _type: STATEMENT_V1, subject: subjects, predicateType, predicate };
  assertStatement(s);
  return s;
}

export function assertStatement(s: unknown, where = 'statement'): asserts s is InTotoStatement {
  const st = s as Partial<InTotoStatement> | null;
  if (!st || typeof st !== 'object') throw new CtError('MALFORMED_BUNDLE', `${where}: not an object`, { where });
  if (st._type !== STATEMENT_V1 && st._type !== 'https://in-toto.io/Statement/v0.1') {
    throw new CtError('MALFORMED_BUNDLE', `${where}._type: not an in-toto statement: ${String(st._type)}`, { where });
  }
  if (!Array.isArray(st.subject) || st.subject.length === 0) throw new CtError('MALFORMED_BUNDLE', `${where}.subject: missing or empty`, { where });
  st.subject.forEach((sub, i) => {
    if (!sub || typeof sub !== 'object' || typeof sub.digest !== 'object' || sub.digest === null) {
      throw new CtError('MALFORMED_BUNDLE', `${where}.subject[${i}]: needs a digest object`, { where });
    }
  });
  if (typeof st.predicateType !== 'string' || st.predicateType === '') throw new CtError('MALFORMED_BUNDLE', `${where}.predicateType: missing`, { where });
}
