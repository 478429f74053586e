/**
 * Container log lines on the wire (channel `logs` messages, the API's log route and its
 * server-sent events): each line with its stream and time, and the cursor a follower resumes
 * after (docs/host.md "Container logs").
 */
export interface LogLine {
  stream: 'stdout' | 'stderr';
  /** UTC, ISO 8601 with nanoseconds. */
  time: string;
  text: string;
}

/** `<stdout label>[+n].<stderr label>[+n]` (TAI64N labels), or one label for both streams. */
export const LOG_CURSOR_RE = /^[0-9a-f]{24}(?:\+\d{1,6})?(?:\.[0-9a-f]{24}(?:\+\d{1,6})?)?$/;

/** Lines per channel answer, whatever the byte bound: a follower's page stays small. */
export const MAX_LOG_LINES = 5000;

/** A host's answer as the server accepts it: bounded, typed, nothing else. */
export function validLogLines(v: unknown): v is LogLine[] {
  return Array.isArray(v) && v.length <= MAX_LOG_LINES && v.every((l) =>
    l && typeof l === 'object' && (l.stream === 'stdout' || l.stream === 'stderr') && typeof l.time === 'string' && l.time.length <= 40 && typeof l.text === 'string');
}
