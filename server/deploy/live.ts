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

/** Ids bound to one statement at most (SQLite's limit is 32,766; PostgreSQL's 65,535). */
const IDS_PER_STATEMENT = 500;

/**
 * The id of the newest succeeded deployment of each (environment, app): a loose index scan of the
 * (app, environment, created_at, id) index (one probe per app, one per environment of each, one
 * for each cell's newest succeeded row), never the history's rows, let alone their evidence.
 * The same SQL on both databases.
 */
export async function liveDeploymentIds(db: Db, environment?: string): Promise<string[]> {
  const apps = `a (app) AS (
      SELECT MIN(app) FROM deployments
      UNION ALL SELECT (SELECT MIN(d.app) FROM deployments d WHERE d.app > a.app) FROM a WHERE a.app IS NOT NULL)`;
  const cells = environment
    ? `c (app, environment) AS (SELECT a.app, CAST(? AS TEXT) FROM a WHERE a.app IS NOT NULL)`
    : `c (app, environment) AS (
      SELECT a.app, (SELECT MIN(d.environment) FROM deployments d WHERE d.app = a.app) FROM a WHERE a.app IS NOT NULL
      UNION ALL SELECT c.app, (SELECT MIN(d.environment) FROM deployments d WHERE d.app = c.app AND d.environment > c.environment) FROM c WHERE c.environment IS NOT NULL)`;
  const rows = await db.query<{ id: string | null }>(
    `WITH RECURSIVE ${apps}, ${cells}
     SELECT (SELECT x.id FROM deployments x WHERE x.app = c.app AND x.environment = c.environment AND x.status = 'succeeded' ORDER BY x.created_at DESC, x.id DESC LIMIT 1) AS id
     FROM c WHERE c.environment IS NOT NULL`,
    environment ? [environment] : [],
  );
  return rows.flatMap((r) => (r.id === null ? [] : [String(r.id)]));
}

/**
 * `columns` of the live deployment of each (environment, app), newest first: found by
 * liveDeploymentIds, then read by id (a chunk of ids a statement), so what the columns weigh is
 * read for the live rows only.
 */
export async function liveRows<T extends Row>(db: Db, columns: readonly string[], environment?: string): Promise<T[]> {
  const ids = await liveDeploymentIds(db, environment);
  const cols = [...new Set(['id', 'created_at', ...columns])].join(', ');
  const rows: T[] = [];
  for (let i = 0; i < ids.length; i += IDS_PER_STATEMENT) {
    const chunk = ids.slice(i, i + IDS_PER_STATEMENT);
    rows.push(...(await db.query<T>(`SELECT ${cols} FROM deployments WHERE id IN (${chunk.map(() => '?').join(', ')})`, chunk)));
  }
  return rows.sort((x, y) => Number(y.created_at) - Number(x.created_at) || (String(y.id) < String(x.id) ? -1 : String(y.id) > String(x.id) ? 1 : 0));
}

/**
 * What runs now: the latest succeeded deployment of each (environment, app), with its verified
 * evidence — the export `ct policy diff --against` reads and what policy impact is judged on.
 * Newest first. The evidence and decision input (kilobytes a row) are read for those rows only.
 */
export async function liveDeployments(db: Db, environment?: string): Promise<LiveDeployment[]> {
  const rows = await liveRows(db, ['environment', 'app', 'image_digest', 'reference', 'evidence', 'decision_input'], environment);
  return rows.map((r) => ({
    id: String(r.id), environment: String(r.environment), app: String(r.app), imageDigest: r.image_digest === null ? null : String(r.image_digest), reference: String(r.reference),
    evidence: r.evidence ? JSON.parse(String(r.evidence)) : null,
    ...(r.decision_input ? (JSON.parse(String(r.decision_input)) as { manifest: unknown; hostFacts: unknown }) : {}),
  }));
}
