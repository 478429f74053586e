/**
 * Where the policy check reports: one comment on the pull / merge request (found again by a hidden
 * marker and updated in place) and one commit status. One small interface, one file per provider
 * (github.ts, gitlab.ts), so a provider can be pointed at a local stand-in in tests.
 */
export const COMMENT_MARKER = '<!-- cerro-torre/policy -->';
export const STATUS_CONTEXT = 'cerro-torre/policy';

export type StatusState = 'success' | 'failure' | 'error' | 'pending';

export interface Notifier {
  /** Creates the marked comment, or updates the one already there. */
  upsertComment(body: string): Promise<{ id: number; created: boolean }>;
  setStatus(state: StatusState, description: string, targetUrl?: string): Promise<void>;
}
