import type { Db } from '../store/db.js';

type Row = Record<string, string | number | null>;

export interface LiveDeployment {
  id: string;
  environment: string;
  app: string;
  imageDigest: string | null;
  reference: string;
  evidence: unknown;
  /** Manifest facts the policies judged (runtime, security profiles). */
  manifest?: unknown;
  /** Policy facts of the first target host when it was deployed. */
  hostFacts?: unknown;
}

/**
 * What runs now: the latest succeeded deployment of each (environment, app), with its verified
 * evidence — the export `ct policy diff --against` reads and what policy impact is judged on.
 */
export async function liveDeployments(db: Db, environment?: string): Promise<LiveDeployment[]> {
  const rows = await db.query<Row>(
    `SELECT id, environment, app, image_digest, reference, evidence, decision_input FROM deployments WHERE status = 'succeeded' ${environment ? 'AND environment = ?' : ''} ORDER BY created_at DESC`,
    environment ? [environment] : [],
  );
  const live = new Map<string, LiveDeployment>();
  for (const r of rows) {
    const key = `${r.environment}/${r.app}`;
    if (live.has(key)) continue;
    live.set(key, {
      id: String(r.id), environment: String(r.environment), app: String(r.app), imageDigest: r.image_digest === null ? null : String(r.image_digest), reference: String(r.reference),
      evidence: r.evidence ? JSON.parse(String(r.evidence)) : null,
      ...(r.decision_input ? (JSON.parse(String(r.decision_input)) as { manifest: unknown; hostFacts: unknown }) : {}),
    });
  }
  return [...live.values()];
}
