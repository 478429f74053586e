import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Reading a container's logs as the supervisor's multilog processes write them
 * (host/runtime/supervisor.ts): <logDir>/stdout/ and <logDir>/stderr/, each holding `current` and
 * rotated `@<tai64n>.s` files, every line prefixed with its TAI64N label (`@` and 24 hex digits,
 * e.g. `@400000006b12705a37c4a644 hello`). Labels sort as time does, so they are also the cursor
 * a follower resumes from.
 */
export type LogStream = 'stdout' | 'stderr';
export const LOG_STREAMS: readonly LogStream[] = ['stdout', 'stderr'];

export interface LogEntry {
  stream: LogStream;
  /** When multilog read the line (UTC, ISO 8601 with nanoseconds). */
  time: string;
  /** The line's TAI64N label without `@`: resume after it with `since`. */
  cursor: string;
  text: string;
}

export interface ReadOptions {
  /** Only lines after this cursor (a page's, or one entry's for both streams), oldest first. */
  since?: string;
  /** Bound on the text returned (lines' bytes plus newlines): the newest lines, or with `since` the oldest after it. */
  maxBytes?: number;
  /** Bound on the lines returned (the same ends as maxBytes). */
  maxLines?: number;
  /** Only this stream's lines (counted by the bounds after the other stream is left out). */
  stream?: LogStream;
}

export interface LogPage {
  entries: LogEntry[];
  /**
   * What to ask with next: `<stdout label>.<stderr label>`, each stream's last line delivered.
   * Each stream has its own (the two multilog processes flush independently: a line of one
   * stream may reach its file after a later line of the other).
   */
  cursor?: string;
}

const LABEL_RE = /^@([0-9a-f]{24}) /;
/** A page cursor: per stream `<label>+<n>` (the last label delivered and how many lines carrying it were: multilog's clock has microseconds, so lines may share a label). A bare label stands for every line up to and including it. */
export { LOG_CURSOR_RE as CURSOR_RE } from '../../src/protocol/logs.js';
const ZERO = '0'.repeat(24);

/** A cursor per stream from a page cursor (or a single label standing for both). */
function splitCursor(since: string | undefined): Record<LogStream, string> | undefined {
  if (since === undefined) return undefined;
  const [out, err] = since.split('.');
  return { stdout: out, stderr: err ?? out };
}
const TAI_OFFSET = 2n ** 62n + 10n;

/** TAI64N (as daemontools writes it: 2^62 + 10 + Unix seconds, then nanoseconds) → ISO 8601 UTC. */
export function tai64nToIso(label: string): string {
  const secs = BigInt(`0x${label.slice(0, 16)}`) - TAI_OFFSET;
  const nanos = parseInt(label.slice(16, 24), 16);
  const iso = new Date(Number(secs) * 1000).toISOString();
  return `${iso.slice(0, 19)}.${String(nanos).padStart(9, '0')}Z`;
}

/** A stream's files, oldest first: rotated `@…s` (named by when they were closed), then `current`. */
async function streamFiles(dir: string): Promise<{ path: string; closedAt?: string }[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const rotated = names.filter((n) => /^@[0-9a-f]{24}\.[su]$/.test(n)).sort();
  return [...rotated.map((n) => ({ path: join(dir, n), closedAt: n.slice(1, 25) })), ...(names.includes('current') ? [{ path: join(dir, 'current') }] : [])];
}

/** Parses a multilog file; an unfinished last line (being written) is left for the next read. */
function parse(text: string, stream: LogStream, into: LogEntry[], last: { label: string }): void {
  const end = text.lastIndexOf('\n');
  if (end < 0) return;
  for (const line of text.slice(0, end).split('\n')) {
    const m = LABEL_RE.exec(line);
    // A line longer than a file is continued in the next one without a label: it keeps the last.
    if (m) last.label = m[1];
    into.push({ stream, time: tai64nToIso(last.label), cursor: last.label, text: m ? line.slice(26) : line });
  }
}

async function readStream(dir: string, stream: LogStream, o: { since?: string; maxBytes?: number }): Promise<LogEntry[]> {
  // multilog may rotate while we read (current renamed to @….s, a new current): read again until
  // the listing did not change under us, or a line would be skipped.
  for (let attempt = 0; ; attempt++) {
    const files = await streamFiles(dir);
    const out: LogEntry[] = [];
    const last = { label: ZERO };
    // Without `since`, only the newest files that can hold maxBytes of text are read.
    let from = 0;
    if (o.since === undefined && o.maxBytes !== undefined) {
      let bytes = 0;
      for (from = files.length; from > 0 && bytes < o.maxBytes; from--) bytes += (await stat(files[from - 1].path).catch(() => ({ size: 0 }))).size;
    }
    const [label, n] = o.since === undefined ? [] : o.since.split('+');
    for (const f of files.slice(from)) {
      // A rotated file closed before the cursor holds nothing after it.
      if (label !== undefined && f.closedAt !== undefined && f.closedAt < label) continue;
      parse(await readFile(f.path, 'utf8').catch(() => ''), stream, out, last);
    }
    const again = await streamFiles(dir);
    const rotatedMeanwhile = again.filter((f) => f.closedAt).at(-1)?.closedAt !== files.filter((f) => f.closedAt).at(-1)?.closedAt;
    if (rotatedMeanwhile && attempt < 5) continue;
    if (label === undefined) return out;
    const already = n === undefined ? Infinity : Number(n);
    let same = 0;
    return out.filter((e) => e.cursor > label || (e.cursor === label && ++same > already));
  }
}

/** Both streams of a container's log directory, merged in time order. */
export async function readLogs(logDir: string, o: ReadOptions = {}): Promise<LogPage> {
  const since = splitCursor(o.since);
  const [a, b] = await Promise.all(LOG_STREAMS.map((s) => (o.stream && o.stream !== s ? Promise.resolve([]) : readStream(join(logDir, s), s, { since: since?.[s], maxBytes: o.maxBytes }))));
  const merged: LogEntry[] = [];
  for (let i = 0, j = 0; i < a.length || j < b.length;) merged.push(j >= b.length || (i < a.length && a[i].cursor <= b[j].cursor) ? a[i++] : b[j++]);
  let entries = merged;
  if (o.maxBytes !== undefined) {
    let bytes = 0;
    if (o.since === undefined) {
      let k = merged.length;
      while (k > 0 && bytes + Buffer.byteLength(merged[k - 1].text) + 1 <= o.maxBytes) bytes += Buffer.byteLength(merged[--k].text) + 1;
      entries = merged.slice(k);
    } else {
      let k = 0;
      while (k < merged.length && bytes + Buffer.byteLength(merged[k].text) + 1 <= o.maxBytes) bytes += Buffer.byteLength(merged[k++].text) + 1;
      // A single line longer than the bound still moves a follower on.
      entries = merged.slice(0, Math.max(k, Math.min(1, merged.length)));
    }
  }
  // (`slice(length - n)`, not `slice(-n)`: -0 is 0, and a tail of 0 lines would be all of them.)
  if (o.maxLines !== undefined && entries.length > o.maxLines) entries = o.since === undefined ? entries.slice(entries.length - o.maxLines) : entries.slice(0, o.maxLines);
  // What the cursor says was seen: a tail (no `since`) skips the older lines on purpose, so its
  // cursor is the end of everything read, even when the tail is empty (`--tail 0 -f` followed from
  // the first line kept); a page after `since` has seen only what it returns.
  const seen = o.since === undefined ? merged : entries;
  if (seen.length === 0 && !since) return { entries };
  const lastOf = (s: LogStream): string => {
    const prev = since?.[s];
    const last = seen.filter((e) => e.stream === s).at(-1)?.cursor;
    if (last === undefined) return prev ?? `${ZERO}+0`;
    const [prevLabel, prevN] = prev?.split('+') ?? [];
    const carried = prevLabel === last ? (prevN === undefined ? 0 : Number(prevN)) : 0;
    return `${last}+${carried + seen.filter((e) => e.stream === s && e.cursor === last).length}`;
  };
  return { entries, cursor: `${lastOf('stdout')}.${lastOf('stderr')}` };
}

/** The lines as the app wrote them (streams interleaved in time order), for plain-text readers. */
export function renderText(entries: readonly LogEntry[]): string {
  return entries.map((e) => `${e.text}\n`).join('');
}
