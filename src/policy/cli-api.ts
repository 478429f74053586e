/** What `ct policy` and the policy-check action use, in one import. */
import { CtError } from '../core/errors.js';
import type { ErrorCode } from '../core/codes.js';
import { formatIssue, type PolicyIssue } from './issues.js';

export * from './index.js';

/** A CtError carrying every issue, its message the first one with file:line:column. */
export function policyInvalidFrom(issues: PolicyIssue[], code: ErrorCode = 'POLICY_INVALID'): CtError {
  const errors = issues.filter((i) => i.severity === 'error');
  const first = errors[0] ?? issues[0];
  return new CtError(code, first ? `${formatIssue(first)}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ''}` : 'invalid', { issues });
}
