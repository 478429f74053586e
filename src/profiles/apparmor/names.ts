import { CtError } from '../../core/errors.js';

/**
 * Profile names are chosen by the host, never by the bundle: `cerro-torre-<app>-<digest12>`, where
 * <app> is the bundle name lowered to [a-z0-9-] (at most 40 characters) and <digest12> the first 12
 * hex digits of the image digest, so two versions of an app never share a loaded profile.
 */
export const PROFILE_PREFIX = 'cerro-torre-';

export function sanitizeAppName(name: string): string {
  const s = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return s || 'app';
}

export function profileNameFor(appName: string, imageDigest: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(imageDigest);
  if (!m) throw new CtError('PROFILE_INVALID', `image digest ${JSON.stringify(imageDigest)} is not sha256:<64 hex>`, { imageDigest });
  return `${PROFILE_PREFIX}${sanitizeAppName(appName)}-${m[1].slice(0, 12)}`;
}

/** True for names this host generates (and only those may be loaded on behalf of a bundle). */
export function isHostProfileName(name: string): boolean {
  return /^cerro-torre-[a-z0-9-]{1,40}-[0-9a-f]{12}$/.test(name);
}
