/**
 * A statement's predicate is kept in the evidence, which deployments exports and policy previews
 * read again: its nesting is bounded as every other JSON input's (MAX_JSON_DEPTH), at the parse.
 */
import { describe, expect, it } from '@jest/globals';
import { parseStatement } from '../../src/attest/statement.js';
import { MAX_JSON_DEPTH } from '../../src/core/json.js';

const statement = (predicate: unknown) => Buffer.from(JSON.stringify({
  _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'app', digest: { sha256: 'a'.repeat(64) } }], predicateType: 'https://example.com/p', predicate,
}));
/** A value `levels` arrays deep. */
const nested = (levels: number): unknown => (levels === 0 ? 1 : [nested(levels - 1)]);

describe('in-toto statement parse', () => {
  it('accepts a predicate as deep as JSON inputs may nest, and refuses one deeper (MALFORMED_BUNDLE), naming where', () => {
    // The statement is one level, the predicate the rest.
    expect(parseStatement(statement(nested(MAX_JSON_DEPTH - 1)), 'dsseEnvelope.payload').predicateType).toBe('https://example.com/p');
    expect(() => parseStatement(statement(nested(MAX_JSON_DEPTH)), 'dsseEnvelope.payload')).toThrow(expect.objectContaining({
      code: 'MALFORMED_BUNDLE', message: `dsseEnvelope.payload: JSON nested deeper than ${MAX_JSON_DEPTH} levels`,
    }));
  });
});
