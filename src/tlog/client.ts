import type { KeyObject } from 'node:crypto';
import { readBounded, type Body } from '../core/body.js';
import { parseJson } from '../core/json.js';
import { CtError } from '../core/errors.js';
import { canonicalBytes } from '../core/jcs.js';
import { publicKeyFrom } from '../trust/keyid.js';
import { assertLogEntry, type LogEntry } from './entry.js';
import { hashFromHex, isLogEntryRecord, verifyLogEntryRecord, type LogEntryRecord } from './record.js';

export interface LogEndpoint {
  /** The log's id in the trust store; it names the log in the records we return. */
  id: string;
  url: string;
  /** When given (base64 SPKI or a key), each returned record is verified before it is accepted. */
  publicKey?: string | KeyObject;
  operator?: string;
}

export interface RequestOptions {
  /** Per-attempt timeout (default 10 s). */
  timeoutMs?: number;
  /** Retries after the first attempt, for transient failures only (default 2). */
  retries?: number;
  /** First backoff; doubles each retry (default 200 ms). */
  backoffMs?: number;
}

export type SubmitResult =
  | { id: string; url: string; ok: true; record: LogEntryRecord; entry: LogEntry; entryBytes: Buffer; attempts: number }
  | { id: string; url: string; ok: false; code: 'NETWORK_ERROR' | 'LOG_ENTRY_INVALID' | 'LOG_PROOF_INVALID'; message: string; status?: number; attempts: number };

/** A failure worth retrying (network, timeout, 5xx, 429) versus a final answer (other 4xx). */
class Transient extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

async function requestOnce(url: string, init: RequestInit, timeoutMs: number): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    const name = (e as Error)?.name;
    throw new Transient(name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${timeoutMs} ms` : `${(e as Error).message}${(e as { cause?: Error }).cause ? ` (${(e as { cause: Error }).cause.message})` : ''}`);
  }
  if (res.status >= 500 || res.status === 429) {
    await res.body?.cancel().catch(() => undefined);
    throw new Transient(`log answered HTTP ${res.status}`, res.status);
  }
  return res;
}

/** A log's answers (entry records, proofs, revocation lists) are small: more than this is refused unread. */
const MAX_LOG_ANSWER = 16 * 1024 * 1024;

/** The answer's bytes within MAX_LOG_ANSWER (a log is authenticated by its signatures, checked after parsing). */
async function readLogBody(res: Response, url: string): Promise<Buffer> {
  return res.body ? readBounded(res.body as unknown as Body, MAX_LOG_ANSWER, url, 'NETWORK_ERROR') : Buffer.alloc(0);
}

/** Parsed within the byte limit and the JSON depth limit. */
async function readLogJson(res: Response, url: string): Promise<unknown> {
  return parseJson(await readLogBody(res, url), url, 'NETWORK_ERROR');
}

/** Runs `once` with retries and exponential backoff; transient failures only. */
async function withRetries<T>(opts: RequestOptions, once: () => Promise<T>): Promise<{ value: T; attempts: number }> {
  const retries = opts.retries ?? 2;
  const backoff = opts.backoffMs ?? 200;
  for (let attempt = 0; ; attempt++) {
    try {
      return { value: await once(), attempts: attempt + 1 };
    } catch (e) {
      if (!(e instanceof Transient) || attempt >= retries) throw Object.assign(e as Error, { attempts: attempt + 1 });
      await new Promise((r) => setTimeout(r, backoff * 2 ** attempt));
    }
  }
}

function apiUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`;
}

async function submitOne(entry: LogEntry, log: LogEndpoint, opts: RequestOptions): Promise<SubmitResult> {
  const base = { id: log.id, url: log.url };
  const body = JSON.stringify(entry);
  let attempts = 0;
  try {
    const { value: res, attempts: n } = await withRetries(opts, () =>
      requestOnce(apiUrl(log.url, '/api/v1/entries'), { method: 'POST', headers: { 'content-type': 'application/json' }, body }, opts.timeoutMs ?? 10_000),
    );
    attempts = n;
    const json = (await readLogJson(res, apiUrl(log.url, '/api/v1/entries')).catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
    if (res.status === 400 || res.status === 413) {
      return { ...base, ok: false, code: 'LOG_ENTRY_INVALID', status: res.status, message: json?.error?.message ?? `HTTP ${res.status}`, attempts };
    }
    if (res.status !== 200 && res.status !== 201) return { ...base, ok: false, code: 'NETWORK_ERROR', status: res.status, message: `log answered HTTP ${res.status}`, attempts };
    if (!isLogEntryRecord(json)) return { ...base, ok: false, code: 'NETWORK_ERROR', message: 'log answered with something that is not a log entry record', attempts };
    const r = json;
    // The log may have stamped the timestamp; the record's integratedTime is that timestamp.
    const logged = { ...entry, timestamp: r.integratedTime } as LogEntry;
    const entryBytes = canonicalBytes(logged);
    const record: LogEntryRecord = {
      logId: log.id,
      logIndex: r.logIndex,
      integratedTime: r.integratedTime,
      inclusionProof: { logIndex: r.inclusionProof.logIndex, rootHash: r.inclusionProof.rootHash, treeSize: r.inclusionProof.treeSize, hashes: [...r.inclusionProof.hashes] },
      signedEntryTimestamp: r.signedEntryTimestamp,
    };
    if (log.publicKey !== undefined) {
      const key = typeof log.publicKey === 'string' ? publicKeyFrom(log.publicKey) : log.publicKey;
      const check = verifyLogEntryRecord(record, entryBytes, { operator: log.operator ?? log.id, publicKey: key });
      if (!check.ok) return { ...base, ok: false, code: 'LOG_PROOF_INVALID', message: check.message, attempts };
    }
    return { ...base, ok: true, record, entry: logged, entryBytes, attempts };
  } catch (e) {
    const status = e instanceof Transient ? e.status : undefined;
    return { ...base, ok: false, code: 'NETWORK_ERROR', message: (e as Error).message, ...(status ? { status } : {}), attempts: (e as { attempts?: number }).attempts ?? attempts };
  }
}

/**
 * Submits one entry to several logs at once. Each log gets its own timeout and retries; the
 * result lists every log in order, success or failure — one log being down never throws. The
 * entry may omit `timestamp` (the logs stamp it); it and the logs' keys are checked before
 * anything is sent (LOG_ENTRY_INVALID, KEY_INVALID).
 */
export async function submitToLogs(entry: LogEntry | Omit<LogEntry, 'timestamp'>, logs: readonly LogEndpoint[], opts: RequestOptions = {}): Promise<SubmitResult[]> {
  if (!('timestamp' in entry)) assertLogEntry({ ...entry, timestamp: '1970-01-01T00:00:00Z' });
  else assertLogEntry(entry);
  // Unusable keys are the caller's mistake, not a log's failure: refuse before sending anything.
  const withKeys = logs.map((log) => (typeof log.publicKey === 'string' ? { ...log, publicKey: publicKeyFrom(log.publicKey, `log ${log.id} publicKey`) } : log));
  return Promise.all(withKeys.map((log) => submitOne(entry as LogEntry, log, opts)));
}

async function getJsonOrText(url: string, opts: RequestOptions, as: 'json' | 'text'): Promise<unknown> {
  try {
    const { value: res } = await withRetries(opts, () => requestOnce(url, { method: 'GET' }, opts.timeoutMs ?? 10_000));
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => undefined);
      throw new CtError('NETWORK_ERROR', `${url}: HTTP ${res.status}`, { url, status: res.status });
    }
    return as === 'json' ? await readLogJson(res, url) : (await readLogBody(res, url)).toString('utf8');
  } catch (e) {
    if (e instanceof CtError) throw e;
    throw new CtError('NETWORK_ERROR', `${url}: ${(e as Error).message}`, { url }, { cause: e });
  }
}

/** The log's current signed checkpoint (note text; verify with verifyCheckpoint). */
export async function fetchCheckpoint(logUrl: string, opts: RequestOptions = {}): Promise<string> {
  return (await getJsonOrText(apiUrl(logUrl, '/api/v1/checkpoint'), opts, 'text')) as string;
}

/** Consistency proof between two tree sizes; throws NETWORK_ERROR, or LOG_PROOF_INVALID for a garbled answer. */
export async function fetchConsistencyProof(logUrl: string, first: number, second: number, opts: RequestOptions = {}): Promise<Buffer[]> {
  const json = (await getJsonOrText(apiUrl(logUrl, `/api/v1/consistency?first=${first}&second=${second}`), opts, 'json')) as { hashes?: unknown };
  if (!json || !Array.isArray(json.hashes) || json.hashes.length > 128) throw new CtError('LOG_PROOF_INVALID', `${logUrl}: consistency answer has no hash list`);
  const hashes = json.hashes.map(hashFromHex);
  if (hashes.some((h) => h === null)) throw new CtError('LOG_PROOF_INVALID', `${logUrl}: consistency answer holds a malformed hash`);
  return hashes as Buffer[];
}

export interface VerifiedRevocation {
  entry: Extract<LogEntry, { entryType: 'revocation' }>;
  record: LogEntryRecord;
}

/**
 * The log's revocation entries (all, or those revoking `digest`), each checked like a bundle
 * record: SET under the log key and inclusion in the answer's tree. Every record must prove
 * inclusion in the same tree (the answer's `treeSize`/`rootHash`), which the caller can check
 * against a verified checkpoint. Throws NETWORK_ERROR or LOG_PROOF_INVALID.
 */
export async function fetchRevocations(
  logUrl: string,
  logPublicKey: string | KeyObject,
  opts: RequestOptions & { digest?: string } = {},
): Promise<{ treeSize: number; rootHash: string; revocations: VerifiedRevocation[] }> {
  const q = opts.digest ? `?digest=${encodeURIComponent(opts.digest)}` : '';
  const json = (await getJsonOrText(apiUrl(logUrl, `/api/v1/revocations${q}`), opts, 'json')) as { treeSize?: unknown; rootHash?: unknown; revocations?: unknown };
  const bad = (m: string): never => {
    throw new CtError('LOG_PROOF_INVALID', `${logUrl}: revocations: ${m}`);
  };
  if (!json || typeof json.treeSize !== 'number' || typeof json.rootHash !== 'string' || !Array.isArray(json.revocations)) bad('answer is not a revocation list');
  const key = typeof logPublicKey === 'string' ? publicKeyFrom(logPublicKey) : logPublicKey;
  const revocations = (json.revocations as unknown[]).map((item, i) => {
    const { entry, ...record } = item as { entry?: unknown } & LogEntryRecord;
    try {
      assertLogEntry(entry);
    } catch {
      bad(`item ${i} holds no valid entry`);
    }
    const e = entry as LogEntry;
    if (e.entryType !== 'revocation') bad(`item ${i} is not a revocation`);
    if (!isLogEntryRecord(record) || record.inclusionProof.treeSize !== json.treeSize || record.inclusionProof.rootHash !== json.rootHash) {
      bad(`item ${i} does not prove inclusion in the announced tree`);
    }
    const check = verifyLogEntryRecord(record, canonicalBytes(e), { operator: '', publicKey: key });
    if (!check.ok) bad(`item ${i}: ${check.message}`);
    return { entry: e as VerifiedRevocation['entry'], record };
  });
  return { treeSize: json.treeSize as number, rootHash: json.rootHash as string, revocations };
}
