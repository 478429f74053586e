import { dirname, isAbsolute, posix, resolve } from 'node:path';
import { CtError } from '../../core/errors.js';
import { readRegularFile } from '../../core/fs.js';
import { checkRuntime, parseTomlText, throwProblems, type RuntimeSpec } from '../manifest.js';

/** A ct.toml is a few hundred bytes; its TOML parse is bounded further by TOML_LIMITS. */
const MAX_CT_TOML_BYTES = 1024 * 1024;

/** What `ct pack` reads from `ct.toml` (or `--runtime FILE`): see docs/ctp-format.md. */
export interface PackInputs {
  name?: string;
  version?: string;
  architecture?: string;
  os?: string;
  runtime?: RuntimeSpec;
  /** `[[include]]`: host files copied into the image (`from` resolved against the ct.toml's directory). */
  include?: PackInclude[];
}

/**
 * One host file placed in the image at `to` (relative to the image root, no `..`). `from` names it
 * (messages, and the open when `at` is absent); `at` is the path it is opened by: a relative `from`
 * of the packed directory's ct.toml goes through the directory's held handle (`/proc/self/fd/N/from`),
 * as the directory's name may lead elsewhere by then.
 */
export interface PackInclude { from: string; to: string; at?: string }

/** How many `[[include]]` entries a ct.toml may hold. */
const MAX_INCLUDES = 256;

function checkIncludes(v: unknown, base: string, openBase: string | undefined, problems: { path: string; message: string }[]): PackInclude[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) {
    problems.push({ path: 'include', message: 'must be an array of tables ([[include]] from = "...", to = "...")' });
    return undefined;
  }
  if (v.length > MAX_INCLUDES) problems.push({ path: 'include', message: `at most ${MAX_INCLUDES} entries` });
  const out: PackInclude[] = [];
  v.slice(0, MAX_INCLUDES).forEach((e: unknown, i) => {
    const at = `include[${i}]`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) {
      problems.push({ path: at, message: 'must be a table with from and to' });
      return;
    }
    const t = e as Record<string, unknown>;
    for (const k of Object.keys(t)) if (k !== 'from' && k !== 'to') problems.push({ path: `${at}.${k}`, message: 'unknown field' });
    const { from, to } = t;
    if (typeof from !== 'string' || from === '' || from.length > 4096 || from.includes('\0')) problems.push({ path: `${at}.from`, message: 'must be a host file path' });
    const rel = typeof to === 'string' ? to.replace(/^\/+/, '') : '';
    const parts = rel.split('/');
    if (typeof to !== 'string' || rel === '' || rel.length > 255 || rel.includes('\0') || parts.some((s) => s === '' || s === '.' || s === '..') || posix.normalize(rel) !== rel) {
      problems.push({ path: `${at}.to`, message: 'must be a file path in the image (no "..", ".", empty segments or trailing "/")' });
      return;
    }
    if (typeof from !== 'string') return;
    if (isAbsolute(from)) out.push({ from, to: rel });
    else out.push({ from: resolve(base, from), to: rel, ...(openBase === undefined ? {} : { at: `${openBase}/${from}` }) });
  });
  const seen = new Set<string>();
  for (const inc of out) {
    if (seen.has(inc.to)) problems.push({ path: 'include', message: `${inc.to} is included twice` });
    seen.add(inc.to);
  }
  return out;
}

/** Reads and validates a `ct.toml`; unknown keys are errors so typos do not pass silently. */
export async function readPackInputs(path: string, opts: { operatorPath?: boolean; readFrom?: string; includeBase?: string } = {}): Promise<PackInputs> {
  // A regular file, not followed through a link: a TOML error quotes the line it stopped at, and
  // a committed `ct.toml -> /proc/self/environ` would print the job's secrets to its log.
  // `readFrom`: the same file through the packed directory's handle (pack.ts); `path` names it.
  // `includeBase`: that handle's path, which a relative [[include]] `from` is opened through.
  const text = (await readRegularFile(path, MAX_CT_TOML_BYTES, opts.operatorPath ? 'the runtime file' : 'ct.toml', { operatorPath: opts.operatorPath, readFrom: opts.readFrom })).toString('utf8');
  const doc = parseTomlText(text, path);
  const problems: { path: string; message: string }[] = [];
  const out: PackInputs = {};
  for (const k of Object.keys(doc)) if (!['name', 'version', 'image', 'runtime', 'include'].includes(k)) problems.push({ path: k, message: 'unknown field' });
  for (const k of ['name', 'version'] as const) {
    if (doc[k] === undefined) continue;
    if (typeof doc[k] === 'string') out[k] = doc[k] as string;
    else problems.push({ path: k, message: 'must be a string' });
  }
  const image = doc.image as Record<string, unknown> | undefined;
  if (image !== undefined) {
    if (typeof image !== 'object' || image === null || Array.isArray(image)) problems.push({ path: 'image', message: 'must be a table' });
    else {
      for (const k of Object.keys(image)) {
        if (k !== 'architecture' && k !== 'os') problems.push({ path: `image.${k}`, message: 'unknown field' });
        else if (typeof image[k] !== 'string' || !/^[a-z0-9]{1,32}$/.test(image[k] as string)) problems.push({ path: `image.${k}`, message: 'must be a GOARCH/GOOS-style name' });
        else out[k] = image[k] as string;
      }
    }
  }
  out.runtime = checkRuntime(doc.runtime, 'runtime', problems);
  out.include = checkIncludes(doc.include, dirname(resolve(path)), opts.includeBase, problems);
  throwProblems(path, problems);
  return out;
}

/** Node's process.arch in OCI (GOARCH) spelling. */
export function ociArch(arch: string = process.arch): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  const a = map[arch];
  if (!a) throw new CtError('USAGE', `no OCI architecture name for ${arch}; set [image] architecture in ct.toml`, { arch });
  return a;
}
