/**
 * Problems found while loading or linting policies, each tied to a file:line:column. Load errors
 * (severity `error`) make the whole repository fail to load; lint adds `warning`s.
 */
import { CtError } from '../core/errors.js';
import type { ErrorCode } from '../core/codes.js';
import type { SourceLocation } from './types.js';

export interface PolicyIssue extends SourceLocation {
  severity: 'error' | 'warning';
  /** Stable kind, e.g. `schema`, `yaml`, `regex-invalid`, `conflict`, `unanchored-pattern`. */
  kind: string;
  message: string;
}

export function formatIssue(i: PolicyIssue): string {
  return `${i.file}:${i.line}:${i.column}: ${i.severity} [${i.kind}] ${i.message}`;
}

/**
 * Thrown when anything in a repository fails to load; `details.issues` holds every problem found,
 * the message names the first with its file:line:column.
 */
export function policyInvalid(issues: PolicyIssue[], code: ErrorCode = 'POLICY_INVALID'): CtError {
  const errors = issues.filter((i) => i.severity === 'error');
  const first = errors[0] ?? issues[0];
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  return new CtError(code, first ? `${formatIssue(first)}${more}` : 'invalid', { issues });
}

/** Collects issues while compiling; `error()` records and continues so that every problem is reported at once. */
export class IssueSink {
  readonly issues: PolicyIssue[] = [];
  error(at: SourceLocation, kind: string, message: string): void {
    this.issues.push({ ...at, severity: 'error', kind, message });
  }
  warning(at: SourceLocation, kind: string, message: string): void {
    this.issues.push({ ...at, severity: 'warning', kind, message });
  }
  get hasErrors(): boolean {
    return this.issues.some((i) => i.severity === 'error');
  }
}
