import { access, open, readdir, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { asIoError, CtError } from '../../src/core/errors.js';
import { mkdirDurable, syncDirectory, writeFileAtomic } from '../../src/core/fs.js';
import { savedHealthcheck, type HealthcheckSpec } from '../../src/bundle/runtime-extras.js';
import type { Previous } from './replace.js';

/**
 * replacing/<id>.json: an in-place replace in progress, on disk. `Previous` alone lives in the
 * agent's memory, and the old container and assigned/<id>.json are gone while the new bundle is
 * health-checked: an agent killed then (kill -9, crash, power loss) would leave an unchecked
 * container as the app and nothing to go back to. This record is written (atomically, 0600, the
 * file then its directory fsynced: durable across a power loss, docs/host-protocol.md) before the
 * old container is deleted and removed once the replace has ended either way; an agent that starts
 * and finds one resumes the check (host/agent/replace-recovery.ts).
 */
export interface ReplaceRecord {
  version: 1;
  /** The app's container id (also the file's name). */
  id: string;
  /** The new bundle's root filesystem (rootfs/<id>-<generation>): the container created from it is the new one. */
  rootfs: string;
  /** What assigned/<id>.json says once the new bundle is healthy. */
  assigned: string;
  /** The new bundle's check (none: running is enough, as in the live path). */
  healthcheck?: HealthcheckSpec;
  /** What ran before (absent: nothing did; a failed new bundle is then stopped and held). */
  previous?: Previous;
}

/**
 * The old OCI config (its seccomp profile is the largest part, tens of KiB) and two assigned
 * texts: 4 MiB is far above any real record, and bounds what a damaged file can make the agent read.
 */
export const MAX_REPLACE_RECORD_BYTES = 4 * 1024 * 1024;

const dirOf = (stateDir: string) => join(stateDir, 'replacing');
export const replaceRecordPath = (stateDir: string, id: string) => join(dirOf(stateDir), `${id}.json`);

export async function saveReplaceRecord(stateDir: string, rec: ReplaceRecord): Promise<void> {
  const text = `${JSON.stringify(rec)}\n`;
  // Refused before the old container is touched: a record that could not be read back is no record.
  if (Buffer.byteLength(text) > MAX_REPLACE_RECORD_BYTES) {
    throw new CtError('HOST_STATE_INVALID', `the record of the replace of ${rec.id} would be ${Buffer.byteLength(text)} bytes, over ${MAX_REPLACE_RECORD_BYTES}`, { id: rec.id });
  }
  // A replacing/ created now is a new entry of the state directory, synced too: else a power loss
  // could take the directory, and the record in it, with it.
  await mkdirDurable(dirOf(stateDir), 0o700);
  await writeFileAtomic(replaceRecordPath(stateDir, rec.id), text, 0o600, { durable: true });
}

/**
 * Removes the record, durably. A record that came back after a power loss would not be harmless:
 * once a replace has succeeded, the old root filesystem is removed and the new container, stopped
 * by the power loss, is the record's; the next start would take it for a new bundle that failed
 * and roll back (replace-recovery.ts), removing the app's root filesystem for a previous one that
 * is gone. So the directory is fsynced after the removal, as after the write.
 */
export async function dropReplaceRecord(stateDir: string, id: string): Promise<void> {
  const path = replaceRecordPath(stateDir, id);
  try {
    await unlink(path);
    await syncDirectory(dirOf(stateDir));
  } catch (e) {
    // No record (every deploy asks): nothing removed, nothing to make durable.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw asIoError(e, path);
  }
}

/** A record left by an agent that did not finish its replace: parsed, or why it could not be. */
export type LeftRecord = { id: string; record: ReplaceRecord } | { id: string; invalid: string };

/** The apps with a record in the state directory (temporary files of an interrupted write are not records). */
export async function replaceRecordIds(stateDir: string): Promise<string[]> {
  const names = await readdir(dirOf(stateDir)).catch(() => [] as string[]);
  return names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort().map((n) => n.slice(0, -5));
}

export function hasReplaceRecord(stateDir: string, id: string): Promise<boolean> {
  return access(replaceRecordPath(stateDir, id)).then(() => true, () => false);
}

/**
 * Whether the app is in a replace whose record is to be ended (lifecycle actions on it wait): a
 * damaged record is not, since nothing ends it; the container is left to the operator as it is.
 */
export async function replaceToEnd(stateDir: string, id: string): Promise<boolean> {
  if (!(await hasReplaceRecord(stateDir, id))) return false;
  return !('invalid' in (await leftRecord(stateDir, id)));
}

/** The records in the state directory (`only`: of those apps), parsed or with why they could not be. */
export async function leftReplaceRecords(stateDir: string, only?: ReadonlySet<string>): Promise<LeftRecord[]> {
  const out: LeftRecord[] = [];
  for (const id of await replaceRecordIds(stateDir)) if (!only || only.has(id)) out.push(await leftRecord(stateDir, id));
  return out;
}

async function leftRecord(stateDir: string, id: string): Promise<LeftRecord> {
  try {
    const record = parseReplaceRecord(await readBounded(replaceRecordPath(stateDir, id)), id);
    // The recovery may remove this directory: only ever one of the host's unpacked root filesystems.
    const parent = join(stateDir, 'rootfs');
    if (!(relative(parent, record.rootfs).startsWith(`${id}-`) && dirname(record.rootfs) === parent)) throw new Error(`bad rootfs (not a root filesystem of ${id} under ${parent})`);
    return { id, record };
  } catch (e) {
    return { id, invalid: (e as Error).message };
  }
}

async function readBounded(path: string): Promise<string> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(MAX_REPLACE_RECORD_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, n, buf.length - n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > MAX_REPLACE_RECORD_BYTES) throw new Error(`over ${MAX_REPLACE_RECORD_BYTES} bytes`);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await fh.close();
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const absolute = (v: unknown): v is string => typeof v === 'string' && isAbsolute(v);

/**
 * Every field the recovery acts on is checked (a config it would hand to runc, paths it would
 * remove): anything else is a damaged record, and the recovery refuses to guess.
 */
export function parseReplaceRecord(text: string, id: string): ReplaceRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`not JSON (${(e as Error).message})`);
  }
  const bad: string[] = [];
  if (!isObj(v)) throw new Error('not an object');
  if (v.version !== 1) bad.push('version');
  if (v.id !== id) bad.push('id');
  if (!absolute(v.rootfs)) bad.push('rootfs');
  if (typeof v.assigned !== 'string') bad.push('assigned');
  if (v.healthcheck !== undefined && !savedHealthcheck(v.healthcheck)) bad.push('healthcheck');
  const p = v.previous;
  if (p !== undefined) {
    if (!isObj(p)) bad.push('previous');
    else {
      const c = p.config;
      if (!(isObj(c) && isObj(c.root) && absolute(c.root.path) && isObj(c.process) && isObj(c.linux) && Array.isArray(c.linux.namespaces) && Array.isArray(c.mounts))) bad.push('previous.config');
      if (!absolute(p.rootfs)) bad.push('previous.rootfs');
      if (typeof p.wasRunning !== 'boolean') bad.push('previous.wasRunning');
      for (const k of ['appName', 'imageDigest'] as const) if (p[k] !== null && typeof p[k] !== 'string') bad.push(`previous.${k}`);
      for (const k of ['assigned', 'bundleDigest'] as const) if (p[k] !== undefined && typeof p[k] !== 'string') bad.push(`previous.${k}`);
      const n = p.network;
      if (n !== undefined && !(isObj(n) && typeof n.containerId === 'string' && typeof n.environment === 'string' && typeof n.app === 'string' && Array.isArray(n.ports) && typeof n.egress === 'string')) bad.push('previous.network');
    }
  }
  if (bad.length > 0) throw new Error(`bad ${bad.join(', ')}`);
  return v as unknown as ReplaceRecord;
}
