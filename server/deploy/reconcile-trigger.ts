/**
 * Webhook triggers become reconcile jobs, coalesced and rate-limited per repository (#13 finding 9,
 * #14 target 2). A replayed push with a new delivery id is a valid delivery, so it cannot be
 * refused; it must just not cost another reconcile. A trigger only says "look at the branch": any
 * reconcile that reads the branch after the trigger arrived answers it. So, per repository:
 * - a trigger while no reconcile waits to start enqueues one that starts at once (or as soon as
 *   the running one finishes: the queue runs the jobs of one serial group one at a time);
 * - a trigger while one waits to start joins it (it has not read the branch yet), so a burst of
 *   deliveries during a reconcile costs exactly one trailing reconcile;
 * - a push delivery naming the commit already applied costs nothing (a replay of an old push);
 * - a flood is bounded: at most `burst` reconciles are scheduled in any `windowMs`; beyond that
 *   the next one is scheduled when the window allows it (a token bucket, not a wait for normal
 *   pushes).
 * The jobs' unique dedupe keys (`reconcile:<repo>#<sequence>`) make the coalescing hold across
 * replicas too: two triggers racing for the next sequence number share the job one of them made.
 */
import type { JobQueue } from '../queue/queue.js';

export interface ReconcileLimit {
  burst: number;
  windowMs: number;
}

/** 20 reconciles of one repository in any 2 s: far above what pushes by people or CI need. */
export const DEFAULT_RECONCILE_LIMIT: ReconcileLimit = { burst: 20, windowMs: 2_000 };

export interface ReconcileTrigger {
  /** The repository whose reconciles are coalesced (the desired-state repository). */
  repository: string;
  /** Recorded with the reconcile (`github:push:<delivery>`, `poll`). */
  label: string;
  /** The commit a push delivery names, when it names one. */
  sha?: string;
}

export interface EnqueueOptions {
  limit?: ReconcileLimit;
  /** The commit applied last: a push of exactly that commit needs no reconcile. */
  applied?: () => Promise<string | null>;
  now?: number;
}

const SEQ_DIGITS = 12;

/** `id` is the reconcile that will answer the trigger, null when none is needed. */
export async function enqueueReconcile(queue: JobQueue, t: ReconcileTrigger, opts: EnqueueOptions = {}): Promise<{ id: string | null; created: boolean }> {
  const limit = opts.limit ?? DEFAULT_RECONCILE_LIMIT;
  const serialKey = `reconcile:${t.repository}`;
  if (t.sha && opts.applied && (await opts.applied()) === t.sha) return { id: null, created: false };
  const now = opts.now ?? Date.now();
  const recent = await queue.newest(serialKey, limit.burst + 1);
  const [latest] = recent;
  // Not started yet, so it reads the branch after this trigger: join it. (A reconcile waiting for
  // a retry after a failure is joined too: bringing it forward at every push would let a flood
  // of pushes retry a failing remote without bound.)
  if (latest?.state === 'queued') return { id: latest.id, created: false };
  const seq = (latest ? Number(latest.dedupeKey.slice(latest.dedupeKey.lastIndexOf('#') + 1)) || 0 : 0) + 1;
  const dedupeKey = `${serialKey}#${String(seq).padStart(SEQ_DIGITS, '0')}`;
  // On a conflict another trigger made this job a moment ago (after this one arrived): shared.
  return queue.enqueue('reconcile', dedupeKey, { trigger: t.label }, { serialKey, runAt: allowedAt(recent, limit, now) });
}

/** The earliest start that keeps at most `burst` reconciles in any window, given the newest ones. */
function allowedAt(recent: { runAt: number }[], limit: ReconcileLimit, now: number): number {
  const oldest = recent[limit.burst - 1];
  return oldest ? Math.max(now, oldest.runAt + limit.windowMs) : now;
}
