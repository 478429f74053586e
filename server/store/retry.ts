import type { Db } from './db.js';

/**
 * PostgreSQL's answers to a transaction that lost to a concurrent one (deadlock_detected,
 * serialization_failure): nothing of it was written, and the same transaction run again succeeds.
 */
const RETRYABLE = new Set(['40P01', '40001']);
export const TX_ATTEMPTS = 5;

/**
 * Runs `fn` in a transaction, again (up to TX_ATTEMPTS in all, after a short random pause) when
 * PostgreSQL aborted it as a deadlock or serialization failure; any other error, or the last
 * attempt's, is thrown. `fn` must be safe to run again: it sees nothing of an aborted attempt.
 */
export async function txRetrying<T>(db: Db, fn: (t: Db) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await db.tx(fn);
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (attempt >= TX_ATTEMPTS || typeof code !== 'string' || !RETRYABLE.has(code)) throw e;
      // Apart, so that the two that collided do not collide again at once.
      await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
    }
  }
}
