/**
 * The deploy VSAs this server signed, in its database. A policy's `verifiedIn` is computed from
 * them at every decision: each envelope is verified again with the trust store in force (role
 * `deployers`, validity, revocation, signature, subject = this image AND this .ctp), so a VSA for
 * another digest, or signed by a key that is no longer a deployer, counts for nothing.
 */
import { randomUUID } from 'node:crypto';
import { verifyDeployVsa } from '../../src/attest/vsa.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import type { Db } from '../store/db.js';

/**
 * At most this many VSAs of one image are carried to a host: one per environment, newest first.
 * Every successful deploy signs one, so the newest 8 of all (as before) were, after 8 redeploys to
 * production, 8 production VSAs: the staging one that a `requireVerifiedIn: [staging]` rule needs
 * had dropped out, and the next production deploy of that very bundle was denied. A newer VSA of
 * an environment says what an older one does, unless the older verifies and the newer does not (a
 * deployer key rotated in before the trust store listed it): so a few are kept per environment,
 * and the newest that verifies is the one used.
 */
export const MAX_VSAS_PER_IMAGE = 8;
/** The newest VSAs of one bundle and environment read as candidates. */
const CANDIDATES_PER_ENVIRONMENT = 4;
/** Candidate rows of one bundle read at once (64 environments' worth). */
const MAX_VSA_ROWS = 256;
/** Verifications one decision may spend looking for environments whose VSAs verify. */
const MAX_VERIFICATIONS = 64;

export interface VsaRow {
  deployment_id: string;
  environment: string;
  app: string;
  image_digest: string;
  bundle_digest: string | null;
  envelope: string;
  published: string | null;
  created_at: number;
}

type CandidateRow = { envelope: string; environment: string };

/**
 * A bundle's candidate VSAs. A window function (SQLite ≥ 3.25 and PostgreSQL alike) over the index
 * vsas_bundle_newest; the envelopes (~1.5 KB each) are joined to the few rows kept, not sorted
 * with all of them.
 */
export const CANDIDATES_SQL = `SELECT v.envelope, v.environment FROM (SELECT id, created_at, ROW_NUMBER() OVER (PARTITION BY environment ORDER BY created_at DESC, id) AS n
    FROM vsas WHERE image_digest = ? AND bundle_digest = ?) AS newest JOIN vsas v ON v.id = newest.id
  WHERE newest.n <= ${CANDIDATES_PER_ENVIRONMENT} ORDER BY newest.created_at DESC, newest.id LIMIT ${MAX_VSA_ROWS}`;

export class VsaStore {
  /**
   * Envelope rows by image, on SQLite only: the embedded database belongs to this one process and
   * `record` is the only writer, so the rows are read once per image instead of at every decision
   * (a query per cached `/api/v1/verify`). PostgreSQL replicas record VSAs too: always read there.
   */
  private readonly rows = new Map<string, CandidateRow[]>();
  /** Bumped by every `record`: rows read across one are not kept (they may predate the insert). */
  private generation = 0;

  constructor(private readonly db: Db) {}

  /**
   * Changes whenever the recorded VSAs may have changed (SQLite: this store is the only writer);
   * undefined on PostgreSQL, where other replicas record VSAs: answers must not be kept then.
   */
  get version(): number | undefined {
    return this.db.dialect === 'sqlite' ? this.generation : undefined;
  }

  async forDeployment(deploymentId: string): Promise<VsaRow | undefined> {
    const [row] = await this.db.query<VsaRow>('SELECT * FROM vsas WHERE deployment_id = ?', [deploymentId]);
    return row;
  }

  /** Records a signed VSA once per deployment; returns the one recorded (ours or an earlier one). */
  async record(v: Omit<VsaRow, 'published' | 'created_at'>): Promise<VsaRow> {
    this.generation++;
    this.rows.clear();
    await this.db.run(
      'INSERT INTO vsas (id, deployment_id, environment, app, image_digest, bundle_digest, envelope, published, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT (deployment_id) DO NOTHING',
      [randomUUID(), v.deployment_id, v.environment, v.app, v.image_digest, v.bundle_digest, v.envelope, Date.now()],
    );
    this.generation++;
    this.rows.clear();
    return (await this.forDeployment(v.deployment_id))!;
  }

  async markPublished(deploymentId: string, where: string): Promise<void> {
    await this.db.run('UPDATE vsas SET published = ? WHERE deployment_id = ?', [where.slice(0, 500), deploymentId]);
  }

  /**
   * VSAs naming this image and .ctp: the newest few of each environment, newest first, bounded.
   * Read per bundle, not per image: the newest rows of an image are mostly other bundles' when
   * many apps share it (13 apps in 5 environments pushed a bundle's staging VSA out of the 256).
   */
  async candidates(imageDigest: string, bundleDigest: string): Promise<CandidateRow[]> {
    const key = `${imageDigest} ${bundleDigest}`;
    let rows = this.rows.get(key);
    if (!rows) {
      const generation = this.generation;
      rows = await this.db.query<CandidateRow>(CANDIDATES_SQL, [imageDigest, bundleDigest]);
      if (this.db.dialect === 'sqlite' && generation === this.generation) {
        if (this.rows.size >= 1024) this.rows.clear();
        this.rows.set(key, rows);
      }
    }
    return rows;
  }

  /**
   * Environments where this exact bundle has a VSA that verifies now, and the envelopes to carry
   * to a host: per environment the newest that verifies (or, when none does here, the newest: the
   * host judges with its own trust store), at most MAX_VSAS_PER_IMAGE. Fail closed without trust.
   */
  async verifiedIn(trust: TrustMaterial | undefined, imageDigest: string, bundleDigest: string): Promise<{ environments: string[]; envelopes: string[] }> {
    if (!trust) return { environments: [], envelopes: [] };
    const byEnvironment = new Map<string, CandidateRow[]>();
    for (const r of await this.candidates(imageDigest, bundleDigest)) {
      const rows = byEnvironment.get(r.environment);
      if (rows) rows.push(r);
      else byEnvironment.set(r.environment, [r]);
    }
    const environments = new Set<string>();
    const verified: string[] = [];
    const unverified: string[] = [];
    let budget = MAX_VERIFICATIONS;
    // Environments in the order of their newest VSA (a Map keeps insertion order; rows come newest
    // first). Those with a VSA that verifies here take the host's 8 places first: an environment
    // whose VSAs this server cannot verify must not push out one it can.
    for (const rows of byEnvironment.values()) {
      if (verified.length === MAX_VSAS_PER_IMAGE) break;
      const good = rows.find((r) => {
        if (budget-- <= 0) return false;
        try {
          environments.add(verifyDeployVsa(Buffer.from(r.envelope, 'utf8'), { store: trust.store, imageDigest, bundleDigest }).environment);
          return true;
        } catch {
          return false;
        }
      });
      if (good) verified.push(good.envelope);
      // None verifies here: its newest, for the host's own trust store to judge, if a place is left.
      else unverified.push(rows[0].envelope);
    }
    const envelopes = [...verified, ...unverified].slice(0, MAX_VSAS_PER_IMAGE);
    return { environments: [...environments].sort(), envelopes };
  }
}
