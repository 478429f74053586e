export { verifyCtp, verifyCtpArchive, type CtpVerifyOptions } from './verify-ctp.js';
export { checkCoverage, mustBeCovered } from './coverage.js';
export { defaultVerifiers } from './verifiers.js';
