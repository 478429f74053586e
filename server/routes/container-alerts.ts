import type { Db } from '../store/db.js';
import { hostLabels, isTarget, targetsOf } from '../deploy/host-targets.js';

type Row = Record<string, string | number | null>;
const iso = (ms: unknown) => new Date(Number(ms)).toISOString();

/**
 * A container's newest 100 alerts, from the hosts this deployment targets only: a host says which
 * container an event is about, and a host of another environment must not put alerts on (or push
 * real ones off) this app's page. Selected in the query (by the host, and by the container the
 * event names), so that no flood of other alerts pushes them out of a fixed window. One query per
 * host, each a seek on audit_kind_subject_time in time order: with every host in one `IN (…)` the
 * planner may instead read all hosts' alerts newest first (audit_kind_time), which on a large log
 * without exact statistics took seconds. The record's fields cannot replace the row's time and host.
 */
export async function containerAlerts(db: Db, environment: string, selector: Record<string, string>, container: string): Promise<Record<string, unknown>[]> {
  const targets = targetsOf(environment, selector);
  const hosts = (await db.query<{ id: string; labels: string }>('SELECT id, labels FROM hosts')).filter((h) => isTarget(targets, hostLabels(String(h.labels)))).map((h) => String(h.id));
  const like = `%"container":${JSON.stringify(container).replace(/[!%_]/g, (c) => `!${c}`)}%`;
  const rows: Row[] = [];
  for (const host of hosts) {
    rows.push(...(await db.query<Row>(
      `SELECT time, subject, record FROM audit WHERE kind = 'host.alert' AND subject = ? AND record LIKE ? ESCAPE '!' ORDER BY time DESC LIMIT 100`,
      [host, like],
    )));
  }
  return rows
    .sort((a, b) => Number(b.time) - Number(a.time))
    .map((a) => ({ ...(JSON.parse(String(a.record)) as { event?: { container?: unknown } }), time: iso(a.time), host: a.subject }))
    .filter((a) => a.event?.container === container)
    .slice(0, 100);
}
