import { describe, expect, it } from '@jest/globals';
import { canonicalize } from '../../src/core/jcs.js';
import { CtError } from '../../src/core/errors.js';
import { exitCodeFor } from '../../src/core/codes.js';
import { pae } from '../../src/attest/dsse.js';

describe('JCS', () => {
  it('sorts keys and drops whitespace', () => {
    expect(canonicalize({ b: 1, a: [true, null, 'x'] })).toBe('{"a":[true,null,"x"],"b":1}');
  });
  it('serialises numbers as ECMAScript does (RFC 8785 §3.2.2.3)', () => {
    expect(canonicalize({ n: 1e21, m: 0.000001 })).toBe('{"m":0.000001,"n":1e+21}');
  });
});

describe('codes', () => {
  it('maps verification codes to the upstream exit codes', () => {
    expect(exitCodeFor('INVALID_SIGNATURE')).toBe(2);
    expect(exitCodeFor('MALFORMED_BUNDLE')).toBe(10);
    expect(exitCodeFor('UNKNOWN_KEY')).toBe(3);
    expect(new CtError('SUBJECT_MISMATCH', 'x').code).toBe('SUBJECT_MISMATCH');
  });
});

describe('DSSE PAE', () => {
  it('counts bytes, not characters', () => {
    expect(pae('t', Buffer.from('é', 'utf8')).toString('utf8')).toBe('DSSEv1 1 t 2 é');
  });
});
