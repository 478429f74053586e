/**
 * The lifecycle parts of the manifest's `[runtime]` table (issue 11): restart policy, stop grace
 * period, `[runtime.healthcheck]`, `[runtime.resources]` and `[runtime.ulimits]`. Kept apart from
 * manifest.ts so that each part stays small; manifest.ts calls checkLifecycle() for these keys.
 * Every number is bounded: a manifest cannot make a host wait for hours or ask for 2^60 bytes.
 */

export type RestartPolicy = 'never' | 'on-failure' | 'always';
export type HealthcheckType = 'exec' | 'http' | 'tcp';

export interface HealthcheckSpec {
  type: HealthcheckType;
  /** exec: argv run inside the container (runc exec); exit 0 is healthy. */
  command?: string[];
  /** http/tcp: port inside the container's network namespace. */
  port?: number;
  /** http: path requested with GET; 2xx/3xx is healthy. */
  path?: string;
  /** Seconds between checks. */
  interval: number;
  /** Seconds one check may take before it counts as failed. */
  timeout: number;
  /** Consecutive failures that make the app unhealthy. */
  retries: number;
  /** Seconds after start during which failures do not count (a success ends it early). */
  start_period: number;
}

export interface ResourcesSpec {
  /** Bytes. */
  memory?: number;
  /** CPUs (fractional: 0.5 is half a CPU). */
  cpus?: number;
  pids?: number;
}

export interface UlimitsSpec {
  nofile?: { soft: number; hard: number };
}

export interface LifecycleSpec {
  restart?: RestartPolicy;
  /** Seconds between SIGTERM and SIGKILL on stop. */
  stop_grace_period?: number;
  healthcheck?: HealthcheckSpec;
  resources?: ResourcesSpec;
  ulimits?: UlimitsSpec;
}

interface Problem {
  path: string;
  message: string;
}

export const LIFECYCLE_KEYS = ['restart', 'stop_grace_period', 'healthcheck', 'resources', 'ulimits'] as const;

const RESTART = new Set(['never', 'on-failure', 'always']);
const HC_TYPES = new Set(['exec', 'http', 'tcp']);
const SIZE_RE = /^([0-9]{1,15})\s*([kKmMgG]i?)?[bB]?$/;
const UNIT: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 };
/** 1 TiB: above any host this runs on, below precision trouble. */
const MAX_MEMORY = 1024 ** 4;

function isTable(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

function number(v: unknown, path: string, problems: Problem[], min: number, max: number, integer: boolean): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v >= min && v <= max && (!integer || Number.isInteger(v))) return v;
  problems.push({ path, message: `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}` });
  return undefined;
}

/** "64M", "512Mi", "1G" or a byte count. */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = SIZE_RE.exec(v.trim());
  if (!m) return undefined;
  const n = Number(m[1]) * (m[2] ? UNIT[m[2][0].toLowerCase()] : 1);
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * A health check the host saved itself (a replace record, a candidate's OCI config annotation), read
 * back after a crash: valid only when the manifest's own rules find nothing wrong with it, so a
 * damaged copy (a missing start_period is NaN, and the gate never ends) is refused, not run.
 */
export function savedHealthcheck(v: unknown): HealthcheckSpec | undefined {
  const problems: Problem[] = [];
  const hc = healthcheck(v, 'healthcheck', problems);
  return problems.length === 0 && hc && isTable(v) && ['interval', 'timeout', 'retries', 'start_period'].every((k) => typeof v[k] === 'number') ? hc : undefined;
}

function healthcheck(v: unknown, path: string, problems: Problem[]): HealthcheckSpec | undefined {
  if (!isTable(v)) {
    problems.push({ path, message: 'must be a table' });
    return undefined;
  }
  const known = new Set(['type', 'command', 'port', 'path', 'interval', 'timeout', 'retries', 'start_period']);
  for (const k of Object.keys(v)) if (!known.has(k)) problems.push({ path: `${path}.${k}`, message: 'unknown field' });
  if (typeof v.type !== 'string' || !HC_TYPES.has(v.type)) {
    problems.push({ path: `${path}.type`, message: 'must be "exec", "http" or "tcp"' });
    return undefined;
  }
  const out: HealthcheckSpec = {
    type: v.type as HealthcheckType,
    interval: v.interval === undefined ? 10 : number(v.interval, `${path}.interval`, problems, 0.1, 300, false) ?? 10,
    timeout: v.timeout === undefined ? 5 : number(v.timeout, `${path}.timeout`, problems, 0.1, 60, false) ?? 5,
    retries: v.retries === undefined ? 3 : number(v.retries, `${path}.retries`, problems, 1, 100, true) ?? 3,
    start_period: v.start_period === undefined ? 0 : number(v.start_period, `${path}.start_period`, problems, 0, 600, false) ?? 0,
  };
  if (out.type === 'exec') {
    const ok = Array.isArray(v.command) && v.command.length > 0 && v.command.length <= 64 && v.command.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 4096 && !s.includes('\0'));
    if (ok) out.command = [...(v.command as string[])];
    else problems.push({ path: `${path}.command`, message: 'exec checks need a command: 1-64 non-empty strings' });
    if (v.port !== undefined || v.path !== undefined) problems.push({ path, message: 'exec checks take no port or path' });
  } else {
    const port = number(v.port, `${path}.port`, problems, 1, 65535, true);
    if (port !== undefined) out.port = port;
    if (v.command !== undefined) problems.push({ path: `${path}.command`, message: `${out.type} checks take no command` });
    if (out.type === 'http') {
      const p = v.path ?? '/';
      // eslint-disable-next-line no-control-regex
      if (typeof p === 'string' && p.startsWith('/') && p.length <= 1024 && !/[\u0000-\u0020\u007f]/.test(p)) out.path = p;
      else problems.push({ path: `${path}.path`, message: 'must be an absolute URL path without spaces' });
    } else if (v.path !== undefined) problems.push({ path: `${path}.path`, message: 'tcp checks take no path' });
  }
  return out;
}

function resources(v: unknown, path: string, problems: Problem[]): ResourcesSpec | undefined {
  if (!isTable(v)) {
    problems.push({ path, message: 'must be a table' });
    return undefined;
  }
  const out: ResourcesSpec = {};
  for (const k of Object.keys(v)) if (!['memory', 'cpus', 'pids'].includes(k)) problems.push({ path: `${path}.${k}`, message: 'unknown field' });
  if (v.memory !== undefined) {
    const n = parseSize(v.memory);
    // Below 4 MiB runc itself cannot start the container.
    if (n !== undefined && n >= 4 * 1024 ** 2 && n <= MAX_MEMORY) out.memory = n;
    else problems.push({ path: `${path}.memory`, message: 'must be a size from 4M to 1T, such as "64M" or a byte count' });
  }
  if (v.cpus !== undefined) {
    const n = number(v.cpus, `${path}.cpus`, problems, 0.01, 1024, false);
    if (n !== undefined) out.cpus = n;
  }
  if (v.pids !== undefined) {
    const n = number(v.pids, `${path}.pids`, problems, 1, 4194304, true);
    if (n !== undefined) out.pids = n;
  }
  return out;
}

function ulimits(v: unknown, path: string, problems: Problem[]): UlimitsSpec | undefined {
  if (!isTable(v)) {
    problems.push({ path, message: 'must be a table' });
    return undefined;
  }
  const out: UlimitsSpec = {};
  for (const k of Object.keys(v)) if (k !== 'nofile') problems.push({ path: `${path}.${k}`, message: 'unknown field (only nofile)' });
  if (v.nofile !== undefined) {
    const nf = v.nofile;
    const pair = typeof nf === 'number' ? { soft: nf, hard: nf } : isTable(nf) ? { soft: nf.soft, hard: nf.hard } : undefined;
    const soft = pair ? number(pair.soft, `${path}.nofile.soft`, problems, 1, 1048576, true) : undefined;
    const hard = pair ? number(pair.hard, `${path}.nofile.hard`, problems, 1, 1048576, true) : undefined;
    if (!pair) problems.push({ path: `${path}.nofile`, message: 'must be a number or { soft, hard }' });
    else if (soft !== undefined && hard !== undefined) {
      if (soft > hard) problems.push({ path: `${path}.nofile`, message: 'soft must not exceed hard' });
      else out.nofile = { soft, hard };
    }
  }
  return out;
}

/** Validates the lifecycle keys of a `[runtime]` table; pushes one problem per bad field. */
export function checkLifecycle(v: Record<string, unknown>, path: string, problems: Problem[]): LifecycleSpec {
  const out: LifecycleSpec = {};
  if (v.restart !== undefined) {
    if (typeof v.restart === 'string' && RESTART.has(v.restart)) out.restart = v.restart as RestartPolicy;
    else problems.push({ path: `${path}.restart`, message: 'must be "never", "on-failure" or "always"' });
  }
  if (v.stop_grace_period !== undefined) {
    const n = number(v.stop_grace_period, `${path}.stop_grace_period`, problems, 0, 300, false);
    if (n !== undefined) out.stop_grace_period = n;
  }
  if (v.healthcheck !== undefined) {
    const h = healthcheck(v.healthcheck, `${path}.healthcheck`, problems);
    if (h) out.healthcheck = h;
  }
  if (v.resources !== undefined) {
    const r = resources(v.resources, `${path}.resources`, problems);
    if (r) out.resources = r;
  }
  if (v.ulimits !== undefined) {
    const u = ulimits(v.ulimits, `${path}.ulimits`, problems);
    if (u) out.ulimits = u;
  }
  return out;
}

/** The lifecycle keys in a fixed order, for the deterministic manifest text. */
export function orderedLifecycle(r: LifecycleSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.restart !== undefined) out.restart = r.restart;
  if (r.stop_grace_period !== undefined) out.stop_grace_period = r.stop_grace_period;
  if (r.healthcheck) {
    const h = r.healthcheck;
    out.healthcheck = Object.fromEntries(
      ([['type', h.type], ['command', h.command], ['port', h.port], ['path', h.path], ['interval', h.interval], ['timeout', h.timeout], ['retries', h.retries], ['start_period', h.start_period]] as const).filter(([, x]) => x !== undefined),
    );
  }
  if (r.resources) out.resources = Object.fromEntries(([['memory', r.resources.memory], ['cpus', r.resources.cpus], ['pids', r.resources.pids]] as const).filter(([, x]) => x !== undefined));
  if (r.ulimits?.nofile) out.ulimits = { nofile: { soft: r.ulimits.nofile.soft, hard: r.ulimits.nofile.hard } };
  return out;
}
