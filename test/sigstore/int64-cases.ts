/** int64 values of a Rekor log entry as a bundle may write them, and texts a log could have signed. */
import { json as coreJson } from '@sigstore/core';
import type { Rng } from './prng.js';

/** int64 fields as a bundle may write them (fromJSON keeps String() of the JSON value). */
export const FIXED_INTS: unknown[] = [0, '0', -1, '-1', '-0', -0, '00', '007', '+1', '1e3', '1E3', '1.0', '1.5', '0x10', '0b1', ' 12 ', '', 'NaN', 'abc', 'Infinity', '-Infinity', '1e400',
  2 ** 53 - 1, String(2 ** 53 - 1), String(2 ** 53), '9007199254740993', '1152921504606846976', 2 ** 60, '9223372036854775807', '9223372036854775808', '-9223372036854775808',
  1e21, 1e-7, 0.1, 1734374576, '1734374576', '01734374576', '1734374576.0', '1.734374576e9', 1704067200, '1704067199', '1704067200', '1704067200.5', '1735689600', '1735689601', [5], true, null];

export function randomInt(r: Rng): unknown {
  if (r.chance(0.4)) return r.pick(FIXED_INTS);
  const digits = Array.from({ length: 1 + r.int(20) }, () => r.int(10)).join('');
  const s = `${r.pick(['', '', '-', '+', ' '])}${r.pick(['', '', '0', '00'])}${digits}${r.pick(['', '', '.0', '.5', 'e0', 'e3', 'e-2', ' '])}`;
  return r.chance(0.8) ? s : Number(s);
}

/**
 * Texts a log could have signed for an entry: the library's payload (core canonicalize of Number()s),
 * and near misses (the int64 text as written, quoted, or in key insertion order).
 */
export function signedTexts(body: Buffer, logID: Buffer, it: string, li: string): string[] {
  const b = body.toString('base64');
  const id = logID.toString('hex');
  return [
    coreJson.canonicalize({ body: b, integratedTime: Number(it), logIndex: Number(li), logID: id }),
    `{"body":"${b}","integratedTime":${it},"logID":"${id}","logIndex":${li}}`,
    coreJson.canonicalize({ body: b, integratedTime: it, logIndex: li, logID: id }),
    JSON.stringify({ body: b, integratedTime: Number(it), logID: id, logIndex: Number(li) }),
    JSON.stringify({ body: b, integratedTime: Number(it), logIndex: Number(li), logID: id }),
    coreJson.canonicalize({ body: b, integratedTime: Number(it), logIndex: Number(li), logID: id.toUpperCase() }),
  ];
}

