/**
 * Who made a desired-state commit and what they wrote, for the dashboard's history. It is
 * untrusted text (anyone who can push writes it): bounded here, control characters dropped, and
 * always rendered as text.
 */
export interface CommitInfo {
  /** `Name <email>` from the commit's author line. */
  author: string;
  /** The commit message (subject and body), trimmed. */
  message: string;
}

export const MAX_AUTHOR_CHARS = 200;
export const MAX_MESSAGE_CHARS = 2000;

/** Control characters other than newline and tab; bidi overrides that could disguise the text. */
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e\u2066-\u2069]/g;

export function cleanText(s: string, max: number): string {
  const t = s.replace(/\r\n?/g, '\n').replace(UNPRINTABLE, '').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** Parses a raw commit object (`git cat-file commit`): headers, a blank line, the message. */
export function parseCommitInfo(data: Buffer): CommitInfo {
  // The message of a huge commit is cut before decoding: nothing unbounded is held.
  const text = data.subarray(0, 64 * 1024).toString('utf8');
  const split = text.indexOf('\n\n');
  const headers = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 2);
  // The author line: `author Name <email> 1700000000 +0000` (continuation lines of a signature start with a space).
  const m = /^author (.*) (\d+) ([+-]\d{4})$/m.exec(headers);
  return { author: cleanText(m ? m[1] : '', MAX_AUTHOR_CHARS), message: cleanText(body, MAX_MESSAGE_CHARS) };
}
