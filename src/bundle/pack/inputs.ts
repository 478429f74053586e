import { readFile } from 'node:fs/promises';
import { CtError, asIoError } from '../../core/errors.js';
import { checkRuntime, parseTomlText, throwProblems, type RuntimeSpec } from '../manifest.js';

/** What `ct pack` reads from `ct.toml` (or `--runtime FILE`): see docs/ctp-format.md. */
export interface PackInputs {
  name?: string;
  version?: string;
  architecture?: string;
  os?: string;
  runtime?: RuntimeSpec;
}

/** Reads and validates a `ct.toml`; unknown keys are errors so typos do not pass silently. */
export async function readPackInputs(path: string): Promise<PackInputs> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw asIoError(e, path);
  }
  const doc = parseTomlText(text, path);
  const problems: { path: string; message: string }[] = [];
  const out: PackInputs = {};
  for (const k of Object.keys(doc)) if (!['name', 'version', 'image', 'runtime'].includes(k)) problems.push({ path: k, message: 'unknown field' });
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
