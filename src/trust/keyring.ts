/**
 * The local keyring: a directory (`$CT_HOME/keys`; CT_HOME defaults to
 * `$XDG_CONFIG_HOME/cerro-torre`, i.e. `~/.config/cerro-torre`) holding, per key, named by the hex
 * of its key id:
 *   <hex>.pub   SPKI PEM
 *   <hex>.key   PKCS#8 PEM exactly as generated or imported (encrypted stays encrypted), mode 0600
 *   <hex>.json  {id, name?, algorithm, createdAt, encrypted, hasPrivate}
 * The .json is written last, so a listing never shows a half-added key. The directory is 0700.
 */
import { chmod, mkdir, readFile, readdir, stat } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CtError, asIoError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import { keyIdOf } from './keyid.js';
import { isEncryptedPem, keyAlgorithmOf, parsePrivateKey, parsePublicKey, publicKeyPem, type KeyAlgorithm } from './keys.js';

export interface KeyringEntry {
  id: string;
  name?: string;
  algorithm: KeyAlgorithm;
  createdAt: string;
  hasPrivate: boolean;
  encrypted: boolean;
}

export function ctHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CT_HOME) return env.CT_HOME;
  return join(env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'cerro-torre');
}

export function keyringDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(ctHome(env), 'keys');
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function hexOf(id: string): string {
  return id.slice('sha256:'.length);
}

export function keyringPaths(dir: string, id: string): { pub: string; key: string; meta: string } {
  const base = join(dir, hexOf(id));
  return { pub: `${base}.pub`, key: `${base}.key`, meta: `${base}.json` };
}

async function ensureDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw asIoError(e, dir);
  }
}

export async function listKeys(dir: string): Promise<KeyringEntry[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw asIoError(e, dir);
  }
  const out: KeyringEntry[] = [];
  for (const n of names.filter((x) => /^[0-9a-f]{64}\.json$/.test(x)).sort()) {
    const p = join(dir, n);
    try {
      out.push(JSON.parse(await readFile(p, 'utf8')) as KeyringEntry);
    } catch (e) {
      throw new CtError('KEY_INVALID', `${p}: unreadable keyring entry (${(e as Error).message})`, { path: p }, { cause: e });
    }
  }
  return out;
}

/**
 * Finds a key by full id, hex id, unique hex prefix (at least 8 digits) or name.
 * UNKNOWN_KEY when nothing matches, USAGE when a prefix is ambiguous.
 */
export async function resolveKey(dir: string, ref: string): Promise<KeyringEntry> {
  const all = await listKeys(dir);
  const exact = all.find((e) => e.id === ref || hexOf(e.id) === ref || e.name === ref);
  if (exact) return exact;
  const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
  const hits = /^[0-9a-f]{8,}$/.test(hex) ? all.filter((e) => hexOf(e.id).startsWith(hex)) : [];
  if (hits.length === 1) return hits[0];
  if (hits.length > 1) throw new CtError('USAGE', `${ref}: matches ${hits.length} keys; give more of the id`, { ref });
  throw new CtError('UNKNOWN_KEY', `${ref}: no such key in the keyring ${dir}`, { ref, keyring: dir });
}

export interface AddToKeyring {
  publicPem: string;
  /** Private key PEM as it should be stored (already encrypted when it should be). */
  privatePem?: string;
  name?: string;
  now?: Date;
}

/** Adds a key; a known public key may gain its private half, anything else already there is USAGE. */
export async function addToKeyring(dir: string, add: AddToKeyring): Promise<KeyringEntry> {
  const pub = parsePublicKey(add.publicPem, 'public key');
  const id = keyIdOf(pub);
  if (add.name !== undefined && !NAME_RE.test(add.name)) {
    throw new CtError('USAGE', `--name ${JSON.stringify(add.name)}: use letters, digits, '.', '_' or '-' (at most 64)`, { name: add.name });
  }
  const all = await listKeys(dir);
  const existing = all.find((e) => e.id === id);
  if (existing && (existing.hasPrivate || !add.privatePem)) throw new CtError('USAGE', `key ${id} is already in the keyring`, { keyId: id });
  if (add.name && all.some((e) => e.name === add.name && e.id !== id)) {
    throw new CtError('USAGE', `name ${add.name} is already used in the keyring`, { name: add.name });
  }
  await ensureDir(dir);
  const paths = keyringPaths(dir, id);
  if (add.privatePem) await writeFileAtomic(paths.key, add.privatePem, 0o600);
  await writeFileAtomic(paths.pub, publicKeyPem(pub), 0o644);
  const entry: KeyringEntry = {
    id,
    ...(add.name ?? existing?.name ? { name: add.name ?? existing?.name } : {}),
    algorithm: keyAlgorithmOf(pub),
    createdAt: existing?.createdAt ?? (add.now ?? new Date()).toISOString(),
    hasPrivate: Boolean(add.privatePem),
    encrypted: add.privatePem ? isEncryptedPem(add.privatePem) : false,
  };
  await writeFileAtomic(paths.meta, `${JSON.stringify(entry, null, 2)}\n`, 0o644);
  await chmod(dir, 0o700).catch(() => undefined); // tighten a directory created by an older version
  return entry;
}

/**
 * Imports a key file: an SPKI public key, or a PKCS#8 private key (kept byte for byte, so an
 * encrypted key stays encrypted; its password is needed once, to derive the public key).
 */
export async function importKeyFile(dir: string, file: string, opts: { name?: string; password?: string } = {}): Promise<KeyringEntry> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw asIoError(e, file);
  }
  if (text.includes('PRIVATE KEY-----')) {
    const priv = parsePrivateKey(text, opts.password, file);
    return addToKeyring(dir, { publicPem: publicKeyPem(priv), privatePem: text, name: opts.name });
  }
  return addToKeyring(dir, { publicPem: publicKeyPem(parsePublicKey(text, file)), name: opts.name });
}

export async function readKeyringPem(dir: string, entry: KeyringEntry, which: 'public' | 'private'): Promise<string> {
  const paths = keyringPaths(dir, entry.id);
  if (which === 'private' && !entry.hasPrivate) {
    throw new CtError('UNKNOWN_KEY', `key ${entry.id}: the keyring holds only its public key`, { keyId: entry.id });
  }
  const p = which === 'public' ? paths.pub : paths.key;
  try {
    return await readFile(p, 'utf8');
  } catch (e) {
    throw asIoError(e, p);
  }
}

/**
 * A public key named by a file path (SPKI PEM, base64 SPKI DER or an unencrypted private key) or,
 * when no such file exists, by a keyring reference (see resolveKey).
 */
export async function resolvePublicKey(dir: string, ref: string): Promise<{ key: KeyObject; entry?: KeyringEntry }> {
  let text: string | undefined;
  try {
    text = await readFile(ref, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENAMETOOLONG') throw asIoError(e, ref);
  }
  if (text !== undefined) return { key: parsePublicKey(text, ref) };
  const entry = await resolveKey(dir, ref);
  return { key: parsePublicKey(await readKeyringPem(dir, entry, 'public'), keyringPaths(dir, entry.id).pub), entry };
}

/** A private key file named by path, or else by keyring reference (id, prefix or name). */
export async function resolvePrivateKeyPath(dir: string, ref: string): Promise<string> {
  // Looked at, not read: a pipe (`--key <(echo "$KEY")`, /dev/stdin) can be read only once, by the caller.
  let kind: 'file' | 'dir' | 'none' = 'none';
  try {
    kind = (await stat(ref)).isDirectory() ? 'dir' : 'file';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENAMETOOLONG' && code !== 'ENOTDIR') throw asIoError(e, ref);
  }
  // A bare name could be both (a checkout holding a file named like the release key): the signing
  // key is never chosen silently. With a file there, a keyring that cannot be read is no keyring.
  const entry = ref.includes('/')
    ? undefined
    : await resolveKey(dir, ref).catch((e: unknown) => {
        if (kind === 'file' || (e instanceof CtError && e.code === 'UNKNOWN_KEY')) return undefined;
        throw e;
      });
  if (kind === 'file' && entry?.hasPrivate) throw new CtError('USAGE', `--key ${ref}: both a file here and a keyring key (${entry.id}); write ./${ref} for the file, or the key's id for the keyring key`, { ref, keyId: entry.id });
  if (kind === 'file') return ref;
  if (!entry) {
    // Neither: a path is reported as the missing file it most likely is.
    const what = kind === 'dir' ? 'is a directory, not a key file' : 'no such file';
    throw new CtError('IO_ERROR', `${ref}: ${what}, and no key of that name or id in the keyring ${dir} (ct key list)`, { path: ref, keyring: dir });
  }
  if (!entry.hasPrivate) throw new CtError('UNKNOWN_KEY', `key ${entry.id}: the keyring holds only its public key`, { keyId: entry.id });
  return keyringPaths(dir, entry.id).key;
}
