/** What `ct policy` and the policy-check action use, in one import. */
export * from './index.js';
export { policyInvalid as policyInvalidFrom } from './issues.js';
