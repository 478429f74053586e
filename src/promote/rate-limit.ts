/**
 * Forge API failures, classified: a rate limit is waited out with the reset time the forge sends
 * (GitHub `x-ratelimit-reset` / `retry-after`, GitLab `RateLimit-Reset` / `Retry-After`), bounded;
 * a rejected (expired, revoked) token is reported as such and never retried; anything else keeps
 * the forge's status and a bounded message.
 */
import { CtError } from '../core/errors.js';
import { guardRefusal } from './forge-http.js';

export interface RetryOptions {
  /** Longest wait for a rate-limit reset before giving up (default 15 minutes). */
  maxRateLimitWaitMs?: number;
  /** How many times a rate-limited call is tried again (default 3). */
  maxRateLimitRetries?: number;
  /** Injected for tests: how to wait, and what time it is. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

type Provider = 'github' | 'gitlab';

function statusOf(e: unknown): number | undefined {
  const x = e as { status?: unknown; cause?: { response?: { status?: unknown } } };
  if (typeof x?.status === 'number') return x.status;
  const s = x?.cause?.response?.status;
  return typeof s === 'number' ? s : undefined;
}

function header(e: unknown, name: string): string | undefined {
  const x = e as { response?: { headers?: Record<string, unknown> }; cause?: { response?: { headers?: { get?(n: string): string | null } } } };
  const plain = x?.response?.headers?.[name];
  if (typeof plain === 'string' || typeof plain === 'number') return String(plain);
  const h = x?.cause?.response?.headers;
  const v = typeof h?.get === 'function' ? h.get(name) : undefined;
  return v ?? undefined;
}

/** Milliseconds until the forge lets us call again, or undefined when this is not a rate limit. */
export function rateLimitDelay(e: unknown, now: number): number | undefined {
  const status = statusOf(e);
  if (status !== 403 && status !== 429) return undefined;
  const retryAfter = header(e, 'retry-after');
  if (retryAfter !== undefined && /^\d{1,7}$/.test(retryAfter)) return Number(retryAfter) * 1000;
  const remaining = header(e, 'x-ratelimit-remaining') ?? header(e, 'ratelimit-remaining');
  const reset = header(e, 'x-ratelimit-reset') ?? header(e, 'ratelimit-reset');
  if (status === 403 && remaining !== '0') return undefined; // a permission problem, not a limit
  if (reset !== undefined && /^\d{1,12}$/.test(reset)) return Math.max(0, Number(reset) * 1000 - now) + 1000;
  return status === 429 ? 60_000 : undefined;
}

export async function withRateLimit<T>(provider: Provider, f: () => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = opts.now ?? Date.now;
  const maxWait = opts.maxRateLimitWaitMs ?? 15 * 60_000;
  const retries = opts.maxRateLimitRetries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return await f();
    } catch (e) {
      const delay = rateLimitDelay(e, now());
      if (delay === undefined) throw e;
      if (attempt >= retries || delay > maxWait) {
        throw new CtError('PROMOTE_RATE_LIMITED', `${provider} API rate limit: ${attempt >= retries ? `still limited after ${retries} waits` : `resets in ${Math.ceil(delay / 1000)} s, longer than the ${Math.ceil(maxWait / 1000)} s allowed`}`, { provider, delayMs: delay }, { cause: e });
      }
      await sleep(delay);
    }
  }
}

/** A forge failure as a CtError with a stable code; messages bounded (they may echo input). */
export function forgeError(provider: Provider, what: string, e: unknown): CtError {
  if (e instanceof CtError) return e;
  const refused = guardRefusal(e);
  if (refused) return refused;
  const status = statusOf(e);
  const msg = String((e as Error)?.message ?? e).slice(0, 300);
  if (status === 401) return new CtError('PROMOTE_TOKEN_REJECTED', `${provider}: ${what}: the token was rejected (expired or revoked?): ${msg}`, { provider, status }, { cause: e });
  if (status === 403 || status === 404) return new CtError('PROMOTE_FORGE_ERROR', `${provider}: ${what}: HTTP ${status} (does the token have the permissions docs/promotion.md lists?): ${msg}`, { provider, status }, { cause: e });
  return new CtError('PROMOTE_FORGE_ERROR', `${provider}: ${what}: ${status ? `HTTP ${status}: ` : ''}${msg}`, { provider, ...(status ? { status } : {}) }, { cause: e });
}
