/** Where a .ctp carries Sigstore bundles; no dependencies, so callers can test paths without loading @sigstore/*. */
export const SIGSTORE_BUNDLE_SUFFIX = '.sigstore.json';

/** `attestations/<name>.sigstore.json`, directly under attestations/. */
export function isSigstoreAttestationPath(path: string): boolean {
  return path.startsWith('attestations/') && path.endsWith(SIGSTORE_BUNDLE_SUFFIX) && path.indexOf('/', 'attestations/'.length) === -1;
}
