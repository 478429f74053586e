import { randomUUID } from 'node:crypto';
import type { Db } from './store/db.js';
import type { Principal } from './auth/principal.js';

/** Who did something, as written into audit records (never the credential itself). */
export function actor(p: Principal | undefined): { kind: string; id: string; role: string } | null {
  return p ? { kind: p.kind, id: p.id, role: p.role } : null;
}

/** Appends one audit record: `kind` names what happened (`api.sync`, `mcp.tool`, …). */
export async function recordAudit(db: Db, kind: string, subject: string | null, record: Record<string, unknown>): Promise<void> {
  await db.run('INSERT INTO audit (id, time, kind, subject, record) VALUES (?, ?, ?, ?, ?)', [randomUUID(), Date.now(), kind, subject, JSON.stringify(record)]);
}
