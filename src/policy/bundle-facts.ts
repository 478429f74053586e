/**
 * What a bundle declares, for the engine: manifest fields and its security/ files. Read from a
 * `.ctp` through src/bundle (which does the hostile-archive handling) or from an unpacked
 * directory. These facts are the bundle's claims; the engine trusts them only as far as verified
 * attestations cover them (runtime-rules.ts checks coverage when the evidence lists it).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { asIoError, CtError } from '../core/errors.js';
import type { CtpArchive } from '../bundle/archive.js';
import { openCtp } from '../bundle/read.js';
import { parseManifest, type CtpManifest } from '../bundle/manifest.js';
import type { BundleFacts } from './types.js';

const SECCOMP = 'security/seccomp.json';
const APPARMOR = 'security/apparmor';
const MONITOR = 'security/monitor.yaml';
const SELINUX = 'security/selinux/policy.cil';
const MAX_SECURITY_FILE = 1024 * 1024;

function facts(m: CtpManifest, seccomp: Buffer | undefined, apparmor: Buffer | undefined, monitor: boolean, where: string, selinux?: Buffer): BundleFacts {
  let parsed: unknown;
  if (seccomp) {
    try {
      parsed = JSON.parse(seccomp.toString('utf8'));
    } catch (e) {
      throw new CtError('MALFORMED_BUNDLE', `${where}: ${SECCOMP} is not JSON: ${(e as Error).message}`, { where, file: SECCOMP });
    }
  }
  return {
    name: m.name,
    version: m.version,
    image_digest: m.image_digest,
    runtime: m.runtime ? { ...m.runtime } : undefined,
    security: { seccomp: parsed, apparmor: apparmor?.toString('utf8'), monitor, ...(selinux ? { selinux: selinux.toString('utf8') } : {}) },
  };
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new CtError('MALFORMED_BUNDLE', `${path}: not a regular file`, { path });
    if (st.size > MAX_SECURITY_FILE) throw new CtError('MALFORMED_BUNDLE', `${path}: larger than ${MAX_SECURITY_FILE} bytes`, { path });
    return await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw asIoError(e, path);
  }
}

/** Facts of a `.ctp` file or of an unpacked bundle directory. */
export async function readBundleFacts(path: string): Promise<BundleFacts> {
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw asIoError(e, path);
  }
  if (st.isDirectory()) {
    const man = await readOptional(join(path, 'manifest.toml'));
    if (!man) throw new CtError('MANIFEST_INVALID', `${path}: manifest.toml is missing`, { path });
    const m = parseManifest(man, join(path, 'manifest.toml'));
    const monitor = (await readOptional(join(path, MONITOR))) !== undefined;
    return facts(m, await readOptional(join(path, SECCOMP)), await readOptional(join(path, APPARMOR)), monitor, path, await readOptional(join(path, SELINUX)));
  }
  return bundleFactsFromArchive(await openCtp(path), path);
}

/**
 * Facts of an archive already opened (and verified) by the caller: read from the same bytes the
 * verifier checked, never from a second read of the file, which could have changed in between.
 */
export function bundleFactsFromArchive(ctp: CtpArchive, where = 'bundle'): BundleFacts {
  const get = (n: string) => (ctp.has(n) ? ctp.file(n) : undefined);
  return facts(ctp.manifest, get(SECCOMP), get(APPARMOR), ctp.has(MONITOR), where, get(SELINUX));
}
