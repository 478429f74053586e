/**
 * Who may call the admission webhooks, in the deploy server and in `ct admission serve`. The API
 * server presents a bearer token when its AdmissionConfiguration kubeconfig names one for the
 * webhook's host (`users[].user.token`); with `admission.tokenFile` (or `--token-file`) set, every
 * webhook request must carry one of the file's tokens (one per line, so a rotation can list the old and the new),
 * checked before the body is read. The file is re-read when it changes; a file that becomes
 * empty or unreadable keeps the tokens in force, and one that never loaded stops the server
 * from starting (fail closed).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { CtError } from '../../src/core/errors.js';
import { FileWatch } from './reload.js';

const MAX_TOKENS = 16;
const MAX_FILE = 64 * 1024;
const MIN_TOKEN = 16;

const hash = (t: string) => createHash('sha256').update(t, 'utf8').digest();

function readTokens(file: string): Buffer[] {
  let text: string;
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_FILE) throw new Error(`larger than ${MAX_FILE} bytes`);
    text = buf.toString('utf8');
  } catch (e) {
    throw new CtError('ADMISSION_TOKEN_FILE_INVALID', `admission token file ${file}: ${(e as Error).message}`, { file }, { cause: e });
  }
  const tokens = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  if (tokens.length === 0) throw new CtError('ADMISSION_TOKEN_FILE_INVALID', `admission token file ${file} holds no token`, { file });
  if (tokens.length > MAX_TOKENS) throw new CtError('ADMISSION_TOKEN_FILE_INVALID', `admission token file ${file} holds ${tokens.length} tokens; at most ${MAX_TOKENS}`, { file });
  const short = tokens.find((t) => t.length < MIN_TOKEN || /\s/.test(t));
  if (short !== undefined) throw new CtError('ADMISSION_TOKEN_FILE_INVALID', `admission token file ${file}: tokens need ${MIN_TOKEN}+ characters and no spaces`, { file });
  return tokens.map(hash);
}

export interface CallerCheck {
  /** True when the request carries an accepted token. */
  allows(req: IncomingMessage): boolean;
  close(): void;
}

export function bearerTokenCheck(file: string, log?: Logger, intervalMs = 5000): CallerCheck {
  let tokens = readTokens(file);
  const watch = FileWatch.forFiles([file], intervalMs, () => {
    try {
      tokens = readTokens(file);
      log?.info({ file }, 'admission token file reloaded');
    } catch (e) {
      log?.error({ err: (e as Error).message }, 'admission token file not reloaded: keeping the tokens in force');
    }
  }, log);
  return {
    allows(req) {
      const m = /^Bearer ([\x21-\x7e]{1,4096})$/.exec(req.headers.authorization ?? '');
      if (!m) return false;
      const got = hash(m[1]);
      // Every token compared, in constant time each: no early exit that times which one matched.
      let ok = false;
      for (const t of tokens) ok = timingSafeEqual(got, t) || ok;
      return ok;
    },
    close: () => watch.close(),
  };
}

/** The answer to a caller without an accepted token: its body is never read (drained, not parsed). */
export function refuseCaller(req: IncomingMessage, res: ServerResponse, where: string, metrics?: { httpError(status: number): void }): void {
  req.resume();
  // Counted: a rotated or mismatched token refuses (denies) every call, which only this shows.
  metrics?.httpError(401);
  res.writeHead(401, { 'content-type': 'application/json; charset=utf-8', 'www-authenticate': 'Bearer realm="cerro-torre-admission"', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ code: 'ADMISSION_UNAUTHENTICATED', error: `the admission webhooks need a bearer token of ${where} (the API server's AdmissionConfiguration kubeconfig)` }));
}
