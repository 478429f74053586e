import Database from 'better-sqlite3';
import { basename, dirname, join } from 'node:path';
import { CtError } from '../../src/core/errors.js';

/** runc's container id grammar, narrowed: it names directories and cgroups (one segment, never `.` or `..`). */
export const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The cgroups the runtime creates: one per container, under /cerro-torre (host/agent, ct run). */
/** `/cerro-torre/<name>`: a container id followed by its state directory's scope (scope.ts), or alone (rows of earlier agents). */
export const CGROUP_RE = /^\/cerro-torre\/[A-Za-z0-9][A-Za-z0-9_.-]{0,72}$/;

/** Container lifecycle (Vörðr's set): a closed union, reported to the server on every change. */
export type ContainerStatus = 'created' | 'running' | 'paused' | 'stopped' | 'removed';

export interface ContainerRecord {
  /** The app's container id (what the server, `ct host` and the logs name). */
  id: string;
  /**
   * The id runc (and the netns, bundle directory and cgroup) know it by: the same as `id`, except
   * for a container that replaced another side by side (a health-gated replace, host/lifecycle):
   * it was started under its own id beside the old one and took the app's id once healthy.
   */
  runcId: string;
  /** Set while this container is the new one of a side-by-side replace: the id of the one it replaces. */
  replaces: string | null;
  status: ContainerStatus;
  bundleDir: string;
  logPath: string;
  /** cgroup path given to runc (relative to the hierarchy roots), e.g. /cerro-torre/<id>. */
  cgroupsPath: string | null;
  appName: string | null;
  imageDigest: string | null;
  /** Host pid of the container's init process while it runs. */
  pid: number | null;
  supervisorPid: number | null;
  /** Exit code once stopped; null while running, or when no supervisor saw the exit. */
  exitCode: number | null;
  exitKnown: boolean;
  /** Why it stopped when the exit code alone does not say: OOM_KILLED (the kernel's OOM killer). */
  exitReason: string | null;
  /** Stopped by an operator (stop action, suspended, channel stop): the restart policy leaves it alone. */
  held: boolean;
  /** Restarts by the restart policy since it was created. */
  restarts: number;
  /** Exit code of the run the restart policy last restarted (null: none, or unknown). */
  lastExitCode: number | null;
  /** Health-check state (host/health): none when the manifest declares no check. */
  health: 'none' | 'starting' | 'healthy' | 'unhealthy';
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface StateChange {
  seq: number;
  id: string;
  status: ContainerStatus;
  exitCode: number | null;
  time: string;
}

interface Row {
  id: string;
  runc_id: string | null;
  replaces: string | null;
  status: ContainerStatus;
  bundle_dir: string;
  log_path: string;
  cgroups_path: string | null;
  app_name: string | null;
  image_digest: string | null;
  pid: number | null;
  supervisor_pid: number | null;
  exit_code: number | null;
  exit_known: number;
  exit_reason: string | null;
  held: number | null;
  restarts: number | null;
  last_exit_code: number | null;
  health: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

/**
 * A row as the runtime may use it. The paths the runtime acts on (a recursive removal of the bundle
 * directory, runc's bundle, the log directory the supervisor writes, the cgroup it creates and
 * removes) are the ones it derives from the container's runc id under this state directory; the
 * recorded ones must be what the runtime writes (`containers/<runc id>`, its `logs` or a former
 * agent's `container.log`, `/cerro-torre/<name>`), compared by their last components so that a state
 * directory opened through another spelling (relative, a symlink) still matches. A row that differs
 * was not written by a runtime: it is refused (HOST_STATE_INVALID) rather than followed, and nothing
 * is done to that container.
 */
function fromRow(r: Row, containersDir: string): ContainerRecord {
  const runcId = r.runc_id ?? r.id;
  const refuse = (what: string, value: unknown): never => {
    throw new CtError('HOST_STATE_INVALID', `container ${JSON.stringify(r.id).slice(0, 80)}: the state database records ${what} ${JSON.stringify(value).slice(0, 200)}, which no runtime writes; nothing was done to it (remove its row from state.db, or the state directory, by hand)`, { id: String(r.id).slice(0, 80) });
  };
  const ids: [string, unknown][] = [['the id', r.id], ['the runc id', runcId]];
  if (r.replaces !== null) ids.push(['the replaced id', r.replaces]);
  for (const [what, value] of ids) if (typeof value !== 'string' || !CONTAINER_ID_RE.test(value)) refuse(what, value);
  // Columns are checked for their type too: SQLite stores whatever it is given.
  if (typeof r.bundle_dir !== 'string' || basename(r.bundle_dir) !== runcId || basename(dirname(r.bundle_dir)) !== 'containers') refuse('the bundle directory', r.bundle_dir);
  if (typeof r.log_path !== 'string') refuse('the log path', r.log_path);
  const logName = basename(r.log_path);
  if (dirname(r.log_path) !== r.bundle_dir || (logName !== 'logs' && logName !== 'container.log')) refuse('the log path', r.log_path);
  if (r.cgroups_path !== null && (typeof r.cgroups_path !== 'string' || !CGROUP_RE.test(r.cgroups_path))) refuse('the cgroup path', r.cgroups_path);
  const bundleDir = join(containersDir, runcId);
  return {
    id: r.id,
    runcId: r.runc_id ?? r.id,
    replaces: r.replaces ?? null,
    status: r.status,
    bundleDir,
    logPath: join(bundleDir, logName),
    cgroupsPath: r.cgroups_path,
    appName: r.app_name,
    imageDigest: r.image_digest,
    pid: r.pid,
    supervisorPid: r.supervisor_pid,
    exitCode: r.exit_code,
    exitKnown: r.exit_known === 1,
    exitReason: r.exit_reason ?? null,
    held: r.held === 1,
    restarts: r.restarts ?? 0,
    lastExitCode: r.last_exit_code ?? null,
    health: (r.health ?? 'none') as ContainerRecord['health'],
    createdAt: r.created_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/**
 * The host's container table (SQLite, WAL). It survives the agent: after a crash the runtime
 * reconciles each row with runc's state and the supervisor's exit file (runc.ts recover()).
 * Every status change is also appended to `changes`, which the agent streams to the server.
 */
export class ContainerStore {
  private readonly db: Database.Database;
  /** <state directory>/containers, as the runtime spells it (see fromRow). */
  private readonly containersDir: string;

  constructor(path: string) {
    this.db = new Database(path);
    this.containersDir = join(dirname(path), 'containers');
    this.db.pragma('journal_mode = WAL');
    // WAL + NORMAL survives a crash of the agent (what kill -9 is); a power loss may lose the last
    // changes, which recover() rebuilds from runc and the exit files. FULL cost an fsync per change.
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS containers (
        id TEXT PRIMARY KEY,
        status TEXT NOT NULL CHECK (status IN ('created','running','paused','stopped','removed')),
        bundle_dir TEXT NOT NULL,
        log_path TEXT NOT NULL,
        cgroups_path TEXT,
        app_name TEXT,
        image_digest TEXT,
        pid INTEGER,
        supervisor_pid INTEGER,
        exit_code INTEGER,
        exit_known INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        started_at TEXT,
        finished_at TEXT
      );
      CREATE TABLE IF NOT EXISTS changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL,
        status TEXT NOT NULL,
        exit_code INTEGER,
        time TEXT NOT NULL
      );
    `);
    // Columns added after the first release: a state file of an older agent gains them in place.
    const cols = new Set((this.db.prepare(`PRAGMA table_info(containers)`).all() as { name: string }[]).map((c) => c.name));
    const add: [string, string][] = [['exit_reason', 'TEXT'], ['held', 'INTEGER NOT NULL DEFAULT 0'], ['restarts', 'INTEGER NOT NULL DEFAULT 0'], ['health', "TEXT NOT NULL DEFAULT 'none'"], ['last_exit_code', 'INTEGER'], ['runc_id', 'TEXT'], ['replaces', 'TEXT']];
    for (const [col, type] of add) if (!cols.has(col)) this.db.exec(`ALTER TABLE containers ADD COLUMN ${col} ${type}`);
  }

  close(): void {
    this.db.close();
  }

  /** Records a created container; one whose paths fromRow would refuse is not written (the read-back is in the transaction). */
  insert(rec: Pick<ContainerRecord, 'id' | 'bundleDir' | 'logPath' | 'cgroupsPath' | 'appName' | 'imageDigest'> & { replaces?: string }): ContainerRecord {
    const now = new Date().toISOString();
    return this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO containers (id, status, bundle_dir, log_path, cgroups_path, app_name, image_digest, created_at, replaces)
           VALUES (?, 'created', ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(rec.id, rec.bundleDir, rec.logPath, rec.cgroupsPath, rec.appName, rec.imageDigest, now, rec.replaces ?? null);
      this.db.prepare(`INSERT INTO changes (id, status, exit_code, time) VALUES (?, 'created', NULL, ?)`).run(rec.id, now);
      return this.get(rec.id)!;
    })();
  }

  get(id: string): ContainerRecord | undefined {
    const row = this.db.prepare(`SELECT * FROM containers WHERE id = ?`).get(id) as Row | undefined;
    return row ? fromRow(row, this.containersDir) : undefined;
  }

  /** The container (not removed) runc knows as `runcId`: its own id, or a side-by-side replace's. */
  byRuncId(runcId: string): ContainerRecord | undefined {
    const row = this.db.prepare(`SELECT * FROM containers WHERE status != 'removed' AND COALESCE(runc_id, id) = ? ORDER BY created_at, id LIMIT 1`).get(runcId) as Row | undefined;
    return row ? fromRow(row, this.containersDir) : undefined;
  }

  list(opts: { includeRemoved?: boolean } = {}): ContainerRecord[] {
    const rows = this.db
      .prepare(`SELECT * FROM containers ${opts.includeRemoved ? '' : "WHERE status != 'removed'"} ORDER BY created_at, id`)
      .all() as Row[];
    return rows.map((r) => fromRow(r, this.containersDir));
  }

  /** Updates fields; records a change when the status differs from the stored one. CONTAINER_NOT_FOUND when there is no such row. */
  update(id: string, patch: Partial<Omit<ContainerRecord, 'id' | 'createdAt'>>): ContainerRecord {
    const cols: Record<string, keyof ContainerRecord> = {
      status: 'status', pid: 'pid', supervisor_pid: 'supervisorPid', exit_code: 'exitCode',
      exit_known: 'exitKnown', exit_reason: 'exitReason', held: 'held', restarts: 'restarts', last_exit_code: 'lastExitCode', health: 'health', started_at: 'startedAt', finished_at: 'finishedAt',
    };
    const sets: string[] = [];
    const values: unknown[] = [];
    for (const [col, key] of Object.entries(cols)) {
      if (key in patch) {
        sets.push(`${col} = ?`);
        const v = (patch as Record<string, unknown>)[key];
        values.push(typeof v === 'boolean' ? (v ? 1 : 0) : v);
      }
    }
    this.db.transaction(() => {
      const before = this.get(id);
      if (!before) return;
      if (sets.length > 0) this.db.prepare(`UPDATE containers SET ${sets.join(', ')} WHERE id = ?`).run(...values, id);
      if (patch.status && patch.status !== before.status) {
        const exit = 'exitCode' in patch ? patch.exitCode ?? null : before.exitCode;
        this.db.prepare(`INSERT INTO changes (id, status, exit_code, time) VALUES (?, ?, ?, ?)`).run(id, patch.status, exit, new Date().toISOString());
      }
    })();
    const after = this.get(id);
    // Forgotten meanwhile by another process on the same state (a `ct run` ending): said, not undefined.
    if (!after) throw new CtError('CONTAINER_NOT_FOUND', `no container ${id}`, { id });
    return after;
  }

  /** Status changes after `afterSeq`, oldest first. */
  changes(afterSeq = 0): StateChange[] {
    return (this.db.prepare(`SELECT seq, id, status, exit_code, time FROM changes WHERE seq > ? ORDER BY seq`).all(afterSeq) as {
      seq: number; id: string; status: ContainerStatus; exit_code: number | null; time: string;
    }[]).map((r) => ({ seq: r.seq, id: r.id, status: r.status, exitCode: r.exit_code, time: r.time }));
  }

  /**
   * The new container of a side-by-side replace takes the app's id (one transaction: the old
   * record goes, the new one is renamed, keeping the runc id it was started under). Its status
   * under the app's id is recorded as a change, so the server sees the app running again.
   */
  adopt(candidate: string, id: string): ContainerRecord {
    this.db.transaction(() => {
      const c = this.get(candidate);
      if (!c) throw new Error(`no container ${candidate} to adopt`);
      this.db.prepare(`DELETE FROM containers WHERE id = ?`).run(id);
      this.db.prepare(`UPDATE containers SET id = ?, runc_id = ?, replaces = NULL WHERE id = ?`).run(id, c.runcId, candidate);
      this.db.prepare(`INSERT INTO changes (id, status, exit_code, time) VALUES (?, ?, ?, ?)`).run(id, c.status, c.exitCode, new Date().toISOString());
    })();
    return this.get(id)!;
  }

  forget(id: string): void {
    this.db.prepare(`DELETE FROM containers WHERE id = ?`).run(id);
  }
}
