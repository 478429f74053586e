export { verifyCtp, verifyCtpArchive, type CtpVerifyOptions } from './verify-ctp.js';
export { checkCoverage, mustBeCovered } from './coverage.js';
export { defaultVerifiers } from './verifiers.js';
export { applyVcsLogEntries, parseVcsLogEntries, VCS_LOG_ENTRIES_PATH, VCS_LOG_ENTRIES_MEDIA_TYPE, type VcsLogEntriesDocument, type VcsLogEntriesOutcome } from './vcs-log-entries.js';
