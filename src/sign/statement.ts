/**
 * Statements are built and validated by src/attest/statement.ts; the signer re-exports what its
 * callers need so `ct sign-bundle --in-toto` and the ctp path share one definition.
 */
export { buildStatement, assertStatement, STATEMENT_TYPE_V1, type Statement, type Subject } from '../attest/statement.js';
