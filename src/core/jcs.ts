import canonicalizeImpl from 'canonicalize';
import { CtError } from './errors.js';

// `canonicalize` implements RFC 8785 (JCS); its CJS default export is typed loosely.
const canonicalizeFn = canonicalizeImpl as unknown as (v: unknown) => string | undefined;

/** RFC 8785 canonical JSON text of a value. */
export function canonicalize(value: unknown): string {
  const text = canonicalizeFn(value);
  if (text === undefined) throw new CtError('JSON_INVALID', 'value cannot be canonicalized as JSON');
  return text;
}

export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}
