/** Where a .ctp carries VCS log entries of its keyless attestations (vcs-log-entries.ts reads it). */
export const VCS_LOG_ENTRIES_PATH = 'attestations/vcs-log-entries.json';
