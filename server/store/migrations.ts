import type { Db } from './db.js';

/**
 * Portable migrations: the SQL subset both SQLite and PostgreSQL accept (TEXT ids, BIGINT
 * millisecond times, JSON kept as TEXT). Append only; never edit a shipped migration.
 */
export const MIGRATIONS: string[][] = [
  [
    `CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
       scopes TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT)`,
    `CREATE TABLE deliveries (source TEXT NOT NULL, id TEXT NOT NULL, event TEXT NOT NULL, received_at BIGINT NOT NULL,
       PRIMARY KEY (source, id))`,
    `CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, dedupe_key TEXT NOT NULL UNIQUE, payload TEXT NOT NULL,
       state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL DEFAULT 5,
       run_at BIGINT NOT NULL, locked_by TEXT, locked_until BIGINT, last_error TEXT, result TEXT,
       created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL)`,
    `CREATE INDEX jobs_ready ON jobs (state, run_at)`,
    `CREATE TABLE deployments (id TEXT PRIMARY KEY, environment TEXT NOT NULL, app TEXT NOT NULL, commit_sha TEXT NOT NULL,
       reference TEXT NOT NULL, image_digest TEXT, status TEXT NOT NULL, reason TEXT, message TEXT, evidence TEXT,
       hosts TEXT NOT NULL DEFAULT '[]', repo TEXT, rollback_of TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
       UNIQUE (commit_sha, environment, app))`,
    `CREATE TABLE audit (id TEXT PRIMARY KEY, time BIGINT NOT NULL, kind TEXT NOT NULL, subject TEXT, record TEXT NOT NULL)`,
    `CREATE TABLE hosts (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, public_key TEXT NOT NULL, labels TEXT NOT NULL,
       facts TEXT NOT NULL, generation BIGINT NOT NULL DEFAULT 0, containers TEXT NOT NULL DEFAULT '[]',
       enrolled_at BIGINT NOT NULL, last_seen BIGINT)`,
    `CREATE TABLE enrollment_tokens (hash TEXT PRIMARY KEY, labels TEXT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT)`,
    `CREATE TABLE reconciles (id TEXT PRIMARY KEY, repo TEXT NOT NULL, commit_sha TEXT, previous_sha TEXT, outcome TEXT NOT NULL,
       message TEXT, trigger TEXT NOT NULL, time BIGINT NOT NULL)`,
    `CREATE TABLE gitops_state (repo TEXT PRIMARY KEY, applied_sha TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
  ],
  [
    `CREATE TABLE notifier_state (deployment_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (deployment_id, key))`,
  ],
  [
    // Several replicas: which replica a host's channel is connected to, and a job handed to one.
    `ALTER TABLE hosts ADD COLUMN replica TEXT`,
    `ALTER TABLE jobs ADD COLUMN affinity TEXT`,
  ],
  [
    // The .ctp a deploy must use, when the desired state pins it (else: the one verified first).
    `ALTER TABLE deployments ADD COLUMN bundle_digest TEXT`,
  ],
  [
    // Which bundles were assigned to which host: a host downloads only what it was assigned.
    `CREATE TABLE host_bundles (host_id TEXT NOT NULL, bundle_digest TEXT NOT NULL, assigned_at BIGINT NOT NULL, PRIMARY KEY (host_id, bundle_digest))`,
  ],
  [
    // The rest of what a deploy's policy decision judged (manifest facts, host facts): policy
    // impact and `ct policy diff` judge live deployments on the same input later.
    `ALTER TABLE deployments ADD COLUMN decision_input TEXT`,
  ],
  [
    // People signed in to the dashboard (server/ui): sessions in the database so replicas share
    // them; only hashes of the cookie secrets are stored. A login in progress (state, nonce,
    // PKCE verifier) is kept here too, used once.
    `CREATE TABLE ui_sessions (id_hash TEXT PRIMARY KEY, subject TEXT NOT NULL, name TEXT NOT NULL, issuer TEXT NOT NULL, role TEXT NOT NULL,
       csrf TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)`,
    `CREATE TABLE ui_logins (state_hash TEXT PRIMARY KEY, browser_hash TEXT NOT NULL, issuer_index INTEGER NOT NULL, verifier TEXT NOT NULL,
       nonce TEXT NOT NULL, redirect_uri TEXT NOT NULL, return_to TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
    // The dashboard's lists: latest deployment per environment/app, newest first, audit by time.
    `CREATE INDEX deployments_app_env_created ON deployments (app, environment, created_at)`,
    `CREATE INDEX deployments_created ON deployments (created_at)`,
    `CREATE INDEX audit_time ON audit (time)`,
  ],
  [
    // Host ports the desired state publishes (JSON list; host/network checks them against policy).
    `ALTER TABLE deployments ADD COLUMN ports TEXT`,
  ],
  [
    // The desired-state commit's author and message (bounded, untrusted text) for the App page's history.
    `ALTER TABLE deployments ADD COLUMN commit_author TEXT`,
    `ALTER TABLE deployments ADD COLUMN commit_message TEXT`,
  ],
  [
    // The deployments list (newest first, a (created_at, id) cursor) filtered by app, environment
    // or status, and the overview's newest deployment per (app, environment), seek one of these
    // in the order they answer in, instead of sorting the history (bench/dashboard.bench.ts).
    `CREATE INDEX deployments_created_id ON deployments (created_at, id)`,
    `CREATE INDEX deployments_app_env_created_id ON deployments (app, environment, created_at, id)`,
    `CREATE INDEX deployments_app_created_id ON deployments (app, created_at, id)`,
    `CREATE INDEX deployments_env_created_id ON deployments (environment, created_at, id)`,
    `CREATE INDEX deployments_status_created_id ON deployments (status, created_at, id)`,
    `DROP INDEX deployments_created`,
    `DROP INDEX deployments_app_env_created`,
  ],
  [
    // Who signed the bundle (server/deploy/signers.ts), for the history without reading evidence.
    `ALTER TABLE deployments ADD COLUMN signers TEXT`,
  ],
  [
    // Deploy VSAs this server signed (server/promotion): one per deployment that stayed healthy;
    // policies' `verifiedIn` is computed from them (each verified again with the trust store).
    `CREATE TABLE vsas (id TEXT PRIMARY KEY, deployment_id TEXT NOT NULL UNIQUE, environment TEXT NOT NULL, app TEXT NOT NULL,
       image_digest TEXT NOT NULL, bundle_digest TEXT, envelope TEXT NOT NULL, published TEXT, created_at BIGINT NOT NULL)`,
    `CREATE INDEX vsas_image ON vsas (image_digest)`,
  ],
  [
    // One-time dashboard sign-in links (server/ui/login-links.ts): only the token's hash, used once.
    `CREATE TABLE ui_login_links (token_hash TEXT PRIMARY KEY, role TEXT NOT NULL, name TEXT NOT NULL, created_by TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
  ],
  [
    // Desired state `suspended: true` (issue 11): the deploy stops the app on its hosts instead of running it.
    `ALTER TABLE deployments ADD COLUMN suspended INTEGER NOT NULL DEFAULT 0`,
  ],
  [
    // Jobs of one serial group (server/queue: the reconciles of one repository) never run at the
    // same time; the index finds a group's newest job.
    `ALTER TABLE jobs ADD COLUMN serial_key TEXT`,
    `CREATE INDEX jobs_serial ON jobs (serial_key, dedupe_key)`,
  ],
  [
    // A claim asks whether a job of the same serial group runs: a seek, not a scan of every
    // reconcile the repository ever had (done jobs are kept).
    `CREATE INDEX jobs_serial_state ON jobs (serial_key, state)`,
  ],
  [
    // Deployments of one image (`?imageDigest=`, MCP inspect_bundle by digest), newest first, at any age.
    `CREATE INDEX deployments_image_created_id ON deployments (image_digest, created_at, id)`,
  ],
  [
    // Host alerts by age (server/retention: the oldest deleted; audit searches by kind) and by host
    // (an app's Evidence page reads the alerts of its hosts, not every alert newest first).
    `CREATE INDEX audit_kind_time ON audit (kind, time)`,
    `CREATE INDEX audit_kind_subject_time ON audit (kind, subject, time)`,
    // Webhook delivery ids older than their retention, deleted without a scan.
    `CREATE INDEX deliveries_received ON deliveries (received_at)`,
  ],
  [
    // The policy repository's last accepted commit per branch (server/gitops/policy-repo.ts), as
    // gitops_state keeps the desired state's: a restarted server (or another replica) still
    // refuses a head that does not descend from it, instead of loading an older signed set.
    `CREATE TABLE policy_state (repo TEXT NOT NULL, branch TEXT NOT NULL, applied_sha TEXT NOT NULL, applied_at BIGINT NOT NULL,
       PRIMARY KEY (repo, branch))`,
  ],
  [
    // Logins in progress are started by anyone, unauthenticated: sweeping the expired ones and
    // counting the live ones against login.maxPendingLogins (server/ui/oidc-login.ts) seek this
    // index instead of scanning the table; expired sessions are swept the same way.
    `CREATE INDEX ui_logins_expires ON ui_logins (expires_at)`,
    `CREATE INDEX ui_sessions_expires ON ui_sessions (expires_at)`,
  ],
  [
    // Who asked for a deploy through the API (an API key, a CI OIDC identity, a dashboard session):
    // JSON {kind, id, role}, null for GitOps deploys (their commit names the author).
    `ALTER TABLE deployments ADD COLUMN created_by TEXT`,
  ],
  [
    // Who stands behind a one-time sign-in link (server/auth/configured-trust.ts: `key:<id>`,
    // `issuer:<url>`, `ci:<url>`, `terminal`), checked again when it is opened and at every read of
    // the session it opens. Links minted before are null, and refused.
    `ALTER TABLE ui_login_links ADD COLUMN minted_by TEXT`,
  ],
  [
    // The groups of a sign-in that its issuer's mapping named (JSON list; server/auth/role-mapping.ts):
    // the session's role is re-derived from them at every read, so a narrowed mapping narrows it.
    // Null for link sessions and for sessions from before.
    `ALTER TABLE ui_sessions ADD COLUMN mapped_groups TEXT`,
  ],
  [
    // A link minted by an issuer's sign-in keeps its minter's subject and mapped groups, and so
    // does the session it opens (whose mapped_groups are the minter's): the link's role follows
    // the minter's as the mapping narrows. Null for other minters and links from before.
    `ALTER TABLE ui_login_links ADD COLUMN minter_subject TEXT`,
    `ALTER TABLE ui_login_links ADD COLUMN minter_groups TEXT`,
    `ALTER TABLE ui_sessions ADD COLUMN minter_subject TEXT`,
  ],
  [
    // API keys made through the API: when each expires, what minted it (a key is accepted only
    // while its minter is, as links: server/auth/configured-trust.ts) and who asked (actor JSON).
    // Null for the bootstrap key and keys from before.
    `ALTER TABLE api_keys ADD COLUMN expires_at BIGINT`,
    `ALTER TABLE api_keys ADD COLUMN minted_by TEXT`,
    `ALTER TABLE api_keys ADD COLUMN created_by TEXT`,
  ],
  [
    // Decommissioned hosts (DELETE /api/v1/hosts/{id}, server/hosts/removal.ts): the `hosts` row is
    // deleted, so that no reader of it (channel, bundle downloads, deploys, drift, …) can forget a
    // filter and let a removed key back in, and its name is free to enrol again; what it was (id,
    // name, key, labels) is kept here for the audit log's host ids and a repeated DELETE (204).
    `CREATE TABLE hosts_removed (id TEXT PRIMARY KEY, name TEXT NOT NULL, public_key TEXT NOT NULL, labels TEXT NOT NULL,
       enrolled_at BIGINT NOT NULL, removed_at BIGINT NOT NULL, removed_by TEXT)`,
    `CREATE INDEX hosts_removed_name ON hosts_removed (name)`,
  ],
  [
    // Each host's assignment generation in a narrow table of its own (server/hosts/generations.ts):
    // raising it in `hosts` rewrote the whole row (facts, inventory) for one number, every host of
    // every deploy. Every existing generation is copied: a host refuses an assignment whose
    // generation is not above what it accepted. `hosts.generation` stays, no longer written (read to
    // seed a host's first row, for a replica of the previous version may still raise it):
    // dropping it rewrites the table on SQLite, and a replica of the previous version still reading
    // it during a rolling upgrade would fail instead of being corrected at its host's next hello.
    `CREATE TABLE host_generations (host_id TEXT PRIMARY KEY REFERENCES hosts (id) ON DELETE CASCADE, generation BIGINT NOT NULL)`,
    `INSERT INTO host_generations (host_id, generation) SELECT id, generation FROM hosts`,
  ],
  [
    // A decision reads the newest few deploy VSAs of one bundle per environment
    // (server/promotion/vsa-store.ts): a seek here, not a sort of the image's whole history.
    `CREATE INDEX vsas_bundle_newest ON vsas (image_digest, bundle_digest, environment, created_at DESC)`,
  ],
  [
    // GET /api/v1/vsas pages an image's VSAs newest first by (created_at, id): each page a seek
    // here, not a sort of the image's whole history. It serves every read vsas_image served.
    `CREATE INDEX vsas_image_created_id ON vsas (image_digest, created_at, id)`,
    `DROP INDEX vsas_image`,
  ],
  [
    // An API key minted by a login.oidc sign-in keeps the groups that sign-in's mapping named (JSON
    // list, as ui_sessions.mapped_groups): the key's role, and its minted keys', is narrowed at every
    // use to what they give an admin now (server/auth/configured-trust.ts apiKeyStanding). Null for
    // keys minted otherwise and for keys from before (a sign-in's then narrowed as a session
    // without groups is).
    `ALTER TABLE api_keys ADD COLUMN minter_groups TEXT`,
  ],
  [
    // The live deployment of each (environment, app) (server/deploy/live.ts): the first row of this
    // index, where deployments_app_env_created_id walked back through every newer failed or denied one.
    // Partial, so both SQLite and PostgreSQL use it for \`status = 'succeeded'\` and it holds only those rows.
    `CREATE INDEX deployments_live ON deployments (app, environment, created_at, id) WHERE status = 'succeeded'`,
  ],
  [
    // A reconcile is recorded at every poll: GET /api/v1/sync reads the newest (one repository:
    // walked from the end of this index) and retention deletes the oldest, each a seek, not a scan.
    `CREATE INDEX reconciles_time ON reconciles (time)`,
  ],
  [
    // The refused desired-state head whose failure status was posted (server/deploy/wire.ts), one
    // row per repository: claimed by an upsert that changes the row only for another commit or
    // reason, so a restart does not post it again and, of several replicas, only one posts it.
    `CREATE TABLE gitops_reported (repo TEXT PRIMARY KEY, commit_sha TEXT NOT NULL, reason TEXT NOT NULL, reported_at BIGINT NOT NULL)`,
  ],
];

/** `migrations`: the list applied (today's; a test gives another to cut one short). */
export async function migrate(db: Db, migrations: readonly (readonly string[])[] = MIGRATIONS): Promise<number> {
  // Replicas starting at once on PostgreSQL: `CREATE TABLE IF NOT EXISTS` itself races on the
  // catalog (a duplicate-key error), so one transaction-scoped advisory lock serialises the whole
  // run; DDL is transactional there. SQLite has a single writer.
  if (db.dialect === 'postgres') {
    return db.tx(async (t) => {
      await t.query('SELECT pg_advisory_xact_lock(74686)');
      return migrateLocked(t, migrations);
    });
  }
  return migrateLocked(db, migrations);
}

async function migrateLocked(db: Db, migrations: readonly (readonly string[])[]): Promise<number> {
  await db.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
  const done = new Set((await db.query<{ version: number }>('SELECT version FROM schema_migrations')).map((r) => Number(r.version)));
  let applied = 0;
  for (let i = 0; i < migrations.length; i++) {
    const version = i + 1;
    if (done.has(version)) continue;
    await db.tx(async (t) => {
      // Two replicas may start at once: the INSERT decides which one applies the migration.
      const won = await t.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?) ON CONFLICT DO NOTHING', [version, Date.now()]);
      if (won.changes === 0) return;
      for (const sql of migrations[i]) await t.run(sql);
      applied++;
    });
  }
  return applied;
}
