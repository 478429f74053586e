import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CtError } from '../core/errors.js';

export interface Credentials {
  username: string;
  password: string;
}

/** What `~/.docker/config.json` holds that we read; credential helpers are not run (docs/registry.md). */
interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
}

/** The key Docker uses for Docker Hub in config.json. */
const DOCKER_HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

/** Normalizes a config.json key (`https://host:port/v1/`, `host:port`) to `host:port`. */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
}

/**
 * Credentials for one registry (host[:port] exactly as in the reference) from a Docker
 * config.json: `auths[...].auth` (base64 `user:password`) or `username`/`password`. A missing
 * file means no credentials; an unreadable or malformed one is an error the user must see.
 */
export async function dockerCredentials(registry: string, path = dockerConfigPath()): Promise<Credentials | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CtError('IO_ERROR', `${path}: ${(e as Error).message}`, { path }, { cause: e });
  }
  let cfg: DockerConfig;
  try {
    cfg = JSON.parse(text) as DockerConfig;
  } catch (e) {
    throw new CtError('JSON_INVALID', `${path}: not valid JSON`, { path }, { cause: e });
  }
  const wanted = registry.toLowerCase();
  const candidates = DOCKER_HUB_KEYS.includes(wanted) ? DOCKER_HUB_KEYS : [wanted];
  for (const [key, entry] of Object.entries(cfg.auths ?? {})) {
    if (!candidates.includes(keyHost(key)) && !candidates.includes(key)) continue;
    if (!entry || typeof entry !== 'object') continue;
    if (typeof entry.auth === 'string' && entry.auth !== '') {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const c = decoded.indexOf(':');
      if (c <= 0) throw new CtError('REGISTRY_AUTH_FAILED', `${path}: auths[${JSON.stringify(key)}].auth is not base64 of user:password`, { path, registry });
      return { username: decoded.slice(0, c), password: decoded.slice(c + 1) };
    }
    if (typeof entry.username === 'string' && typeof entry.password === 'string') return { username: entry.username, password: entry.password };
  }
  return undefined;
}
