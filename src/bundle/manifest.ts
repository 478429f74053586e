import { parse as parseToml, stringify as stringifyToml, TomlDate } from 'smol-toml';
import { CtError } from '../core/errors.js';
import { assertTomlBounds } from './toml-bounds.js';
import { isDigest } from '../core/digest.js';
import { checkLifecycle, LIFECYCLE_KEYS, orderedLifecycle, type LifecycleSpec } from './runtime-extras.js';

/** What the app needs at run time; every field optional (SPEC §2 `[runtime]`). */
export interface RuntimeSpec extends LifecycleSpec {
  user?: string;
  read_only_rootfs?: boolean;
  capabilities?: string[];
  network?: string;
  ports?: string[];
  command?: string[];
  env?: Record<string, string>;
  workdir?: string;
}

/** Parsed `manifest.toml` of a `.ctp` bundle. */
export interface CtpManifest {
  ctp_version?: string;
  name: string;
  version: string;
  image_digest: string;
  metadata: { build_timestamp: string; builder: string; [key: string]: string };
  runtime?: RuntimeSpec;
}

/** The manifest format this code writes; readers accept any 2.x. */
export const CTP_VERSION = '2.0';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// eslint-disable-next-line no-control-regex
const TEXT_RE = /^[^\u0000-\u001f\u007f]{1,256}$/;
const RFC3339_UTC_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const CAP_RE = /^CAP_[A-Z0-9_]{1,64}$/;
const NETWORK_RE = /^[a-z][a-z0-9-]{0,31}$/;
const PORT_RE = /^([0-9]{1,5})(\/(tcp|udp|sctp))?$/;
const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;

interface Problem {
  path: string;
  message: string;
}

type Table = Record<string, unknown>;

function isTable(v: unknown): v is Table {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);
}

/** Parses TOML text within TOML_LIMITS; syntax errors are MANIFEST_INVALID with the line the parser names. */
export function parseTomlText(text: string, where: string): Table {
  assertTomlBounds(text, where, 'MANIFEST_INVALID');
  try {
    return parseToml(text) as Table;
  } catch (e) {
    // smol-toml's TomlError names the place (line, column from 1): said as the file:line:column editors jump to.
    const at = e as { line?: unknown; column?: unknown };
    const place = Number.isSafeInteger(at.line) && Number.isSafeInteger(at.column) ? `:${at.line}:${at.column}` : '';
    throw new CtError('MANIFEST_INVALID', `${where}${place}: not valid TOML: ${(e as Error).message.split('\n')[0]}`, { where, ...(place ? { line: at.line, column: at.column } : {}) }, { cause: e });
  }
}

/**
 * Validates the `[runtime]` table (also used for the `ct.toml` pack inputs). Pushes one problem
 * per bad field, so a user sees every mistake at once.
 */
export function checkRuntime(v: unknown, path: string, problems: Problem[]): RuntimeSpec | undefined {
  if (v === undefined) return undefined;
  if (!isTable(v)) {
    problems.push({ path, message: 'must be a table' });
    return undefined;
  }
  const known = new Set<string>(['user', 'read_only_rootfs', 'capabilities', 'network', 'ports', 'command', 'env', 'workdir', ...LIFECYCLE_KEYS]);
  for (const k of Object.keys(v)) if (!known.has(k)) problems.push({ path: `${path}.${k}`, message: 'unknown field' });
  const out: RuntimeSpec = checkLifecycle(v, path, problems);
  if (v.user !== undefined) {
    if (typeof v.user === 'string' && /^[A-Za-z0-9._-]{1,64}(:[A-Za-z0-9._-]{1,64})?$/.test(v.user)) out.user = v.user;
    else problems.push({ path: `${path}.user`, message: 'must be a user name or uid[:gid]' });
  }
  if (v.read_only_rootfs !== undefined) {
    if (typeof v.read_only_rootfs === 'boolean') out.read_only_rootfs = v.read_only_rootfs;
    else problems.push({ path: `${path}.read_only_rootfs`, message: 'must be a boolean' });
  }
  if (v.capabilities !== undefined) {
    const caps = stringArray(v.capabilities, `${path}.capabilities`, problems, (s) => CAP_RE.test(s), 'a capability name such as CAP_NET_BIND_SERVICE');
    if (caps) out.capabilities = caps;
  }
  if (v.network !== undefined) {
    if (typeof v.network === 'string' && NETWORK_RE.test(v.network)) out.network = v.network;
    else problems.push({ path: `${path}.network`, message: 'must be a network mode such as "none", "bridge" or "host"' });
  }
  if (v.ports !== undefined) {
    if (!Array.isArray(v.ports)) problems.push({ path: `${path}.ports`, message: 'must be an array' });
    else {
      const ports: string[] = [];
      v.ports.forEach((p, i) => {
        // `{container = 8080, protocol = "tcp"}` (the table form) is the same declaration as "8080/tcp".
        if (isTable(p)) {
          const proto = p.protocol ?? 'tcp';
          const extra = Object.keys(p).filter((k) => k !== 'container' && k !== 'protocol');
          if (extra.length === 0 && typeof p.container === 'number' && Number.isInteger(p.container) && p.container >= 1 && p.container <= 65535 && typeof proto === 'string' && /^(tcp|udp|sctp)$/.test(proto)) {
            ports.push(`${p.container}/${proto}`);
          } else problems.push({ path: `${path}.ports[${i}]`, message: 'must be {container = 1-65535, protocol = "tcp" | "udp" | "sctp"}' });
          return;
        }
        const s = typeof p === 'number' ? String(p) : p;
        const m = typeof s === 'string' ? PORT_RE.exec(s) : null;
        if (m && Number(m[1]) >= 1 && Number(m[1]) <= 65535) ports.push(m[2] ? s as string : `${m[1]}/tcp`);
        else problems.push({ path: `${path}.ports[${i}]`, message: 'must be a port 1-65535, optionally "/tcp", "/udp" or "/sctp"' });
      });
      out.ports = ports;
    }
  }
  if (v.command !== undefined) {
    const cmd = stringArray(v.command, `${path}.command`, problems, (s) => s.length > 0 && !s.includes('\0'), 'a non-empty string');
    if (cmd && cmd.length === 0) problems.push({ path: `${path}.command`, message: 'must not be empty' });
    else if (cmd) out.command = cmd;
  }
  if (v.env !== undefined) {
    if (!isTable(v.env)) problems.push({ path: `${path}.env`, message: 'must be a table of strings' });
    else {
      const env: Record<string, string> = {};
      for (const [k, val] of Object.entries(v.env)) {
        if (!ENV_KEY_RE.test(k)) problems.push({ path: `${path}.env.${k}`, message: 'invalid variable name' });
        else if (typeof val !== 'string' || val.includes('\0')) problems.push({ path: `${path}.env.${k}`, message: 'must be a string' });
        else env[k] = val;
      }
      out.env = env;
    }
  }
  if (v.workdir !== undefined) {
    if (typeof v.workdir === 'string' && v.workdir.startsWith('/') && !v.workdir.includes('\0')) out.workdir = v.workdir;
    else problems.push({ path: `${path}.workdir`, message: 'must be an absolute path' });
  }
  return out;
}

function stringArray(v: unknown, path: string, problems: Problem[], ok: (s: string) => boolean, what: string): string[] | undefined {
  if (!Array.isArray(v)) {
    problems.push({ path, message: 'must be an array of strings' });
    return undefined;
  }
  const out: string[] = [];
  v.forEach((s, i) => {
    if (typeof s === 'string' && ok(s)) out.push(s);
    else problems.push({ path: `${path}[${i}]`, message: `must be ${what}` });
  });
  return out;
}

const MAX_PROBLEMS_SHOWN = 20;

export function throwProblems(where: string, problems: Problem[]): void {
  if (problems.length === 0) return;
  // The message names the first few; details.problems is bounded like every CtError's details.
  const list = problems.slice(0, MAX_PROBLEMS_SHOWN).map((p) => `${p.path}: ${p.message}`).join('; ');
  const more = problems.length > MAX_PROBLEMS_SHOWN ? `; and ${problems.length - MAX_PROBLEMS_SHOWN} more` : '';
  throw new CtError('MANIFEST_INVALID', `${where}: ${list}${more}`, { where, problems, problemCount: problems.length });
}

/** Parses and validates `manifest.toml` (SPEC §2). Reports every bad field at once. */
export function parseManifest(text: string | Buffer, where = 'manifest.toml'): CtpManifest {
  const doc = parseTomlText(typeof text === 'string' ? text : text.toString('utf8'), where);
  const problems: Problem[] = [];
  if (doc.ctp_version !== undefined) {
    if (typeof doc.ctp_version !== 'string' || !/^\d+\.\d+$/.test(doc.ctp_version)) problems.push({ path: 'ctp_version', message: 'must be a "major.minor" string' });
    else if (!doc.ctp_version.startsWith('2.')) {
      throw new CtError('UNSUPPORTED_VERSION', `${where}: ctp_version ${doc.ctp_version} is not supported (this reader handles 2.x)`, { where, version: doc.ctp_version });
    }
  }
  const known = new Set(['ctp_version', 'name', 'version', 'image_digest', 'metadata', 'runtime']);
  for (const k of Object.keys(doc)) if (!known.has(k)) problems.push({ path: k, message: 'unknown field' });
  if (typeof doc.name !== 'string' || !NAME_RE.test(doc.name)) problems.push({ path: 'name', message: 'must be 1-128 of [A-Za-z0-9._-], starting with a letter or digit' });
  if (typeof doc.version !== 'string' || !TEXT_RE.test(doc.version) || /\s/.test(doc.version)) problems.push({ path: 'version', message: 'must be a non-empty string without whitespace' });
  if (!isDigest(doc.image_digest)) problems.push({ path: 'image_digest', message: 'must be "sha256:" followed by 64 lowercase hex digits' });
  const metadata: Record<string, string> = {};
  if (!isTable(doc.metadata)) problems.push({ path: 'metadata', message: 'required table is missing' });
  else {
    for (const [k, v] of Object.entries(doc.metadata)) {
      const s = v instanceof TomlDate ? v.toISOString() : v;
      if (typeof s !== 'string') problems.push({ path: `metadata.${k}`, message: 'must be a string' });
      else metadata[k] = s;
    }
    const ts = doc.metadata.build_timestamp;
    const tsText = ts instanceof TomlDate && !ts.isLocal() && ts.toISOString() ? ts.toISOString() : ts;
    if (typeof tsText !== 'string' || !RFC3339_UTC_RE.test(tsText) || Number.isNaN(Date.parse(tsText))) {
      problems.push({ path: 'metadata.build_timestamp', message: 'must be an RFC 3339 UTC timestamp such as 2026-01-01T00:00:00Z' });
    } else metadata.build_timestamp = tsText;
    if (typeof doc.metadata.builder !== 'string' || !TEXT_RE.test(doc.metadata.builder)) problems.push({ path: 'metadata.builder', message: 'must be a non-empty string' });
  }
  const runtime = checkRuntime(doc.runtime, 'runtime', problems);
  throwProblems(where, problems);
  const m: CtpManifest = {
    name: doc.name as string,
    version: doc.version as string,
    image_digest: doc.image_digest as string,
    metadata: metadata as CtpManifest['metadata'],
  };
  if (doc.ctp_version !== undefined) m.ctp_version = doc.ctp_version as string;
  if (runtime) m.runtime = runtime;
  return m;
}

/**
 * Deterministic `manifest.toml` text: fixed key order, env keys sorted, timestamps as strings.
 * Round-trips through parseManifest.
 */
export function serializeManifest(m: CtpManifest): string {
  const metadata: Record<string, string> = { build_timestamp: m.metadata.build_timestamp, builder: m.metadata.builder };
  for (const k of Object.keys(m.metadata).sort()) if (!(k in metadata)) metadata[k] = m.metadata[k];
  const doc: Record<string, unknown> = {
    ctp_version: m.ctp_version ?? CTP_VERSION,
    name: m.name,
    version: m.version,
    image_digest: m.image_digest,
    metadata,
  };
  if (m.runtime) doc.runtime = orderedRuntime(m.runtime);
  const text = `${stringifyToml(doc)}\n`;
  parseManifest(text); // never write what we would refuse to read
  return text;
}

export function orderedRuntime(r: RuntimeSpec): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (r.user !== undefined) out.user = r.user;
  if (r.read_only_rootfs !== undefined) out.read_only_rootfs = r.read_only_rootfs;
  if (r.capabilities !== undefined) out.capabilities = [...r.capabilities];
  if (r.network !== undefined) out.network = r.network;
  if (r.ports !== undefined) out.ports = [...r.ports];
  if (r.command !== undefined) out.command = [...r.command];
  if (r.workdir !== undefined) out.workdir = r.workdir;
  if (r.env !== undefined) out.env = Object.fromEntries(Object.keys(r.env).sort().map((k) => [k, r.env![k]]));
  return { ...out, ...orderedLifecycle(r) };
}
