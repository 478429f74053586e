/**
 * Webhook triggers become reconcile jobs, rate-limited per repository and coalesced (#13 finding 9).
 * A replayed push with a new delivery id is a valid delivery, so it cannot be refused; it must just
 * not cost another reconcile. Time is cut into windows of `intervalMs` per repository:
 * - the first trigger of a window enqueues a reconcile that runs now (leading edge: a push is
 *   applied at once);
 * - every later trigger of that window joins ONE follow-up reconcile that runs when the window
 *   ends (trailing edge: a push that arrives while a reconcile runs is never lost);
 * so a repository costs at most two reconciles per window whatever the number of deliveries.
 * The queue's unique dedupe key does the coalescing, across replicas too.
 */
import type { JobQueue } from '../queue/queue.js';
import type { WebhookTrigger } from '../routes/webhooks.js';

export const DEFAULT_RECONCILE_INTERVAL_MS = 2_000;

export async function enqueueReconcile(queue: JobQueue, t: WebhookTrigger, intervalMs = DEFAULT_RECONCILE_INTERVAL_MS, now = Date.now()): Promise<{ id: string; created: boolean }> {
  const repo = t.repository || 'desired-state';
  const payload = { trigger: `${t.source}:${t.event}:${t.deliveryId}` };
  const window = Math.floor(now / intervalMs);
  const lead = await queue.enqueue('reconcile', `reconcile:${repo}:${window}`, payload);
  if (lead.created) return lead;
  return queue.enqueue('reconcile', `reconcile:${repo}:${window}:trailing`, payload, { runAt: (window + 1) * intervalMs });
}
