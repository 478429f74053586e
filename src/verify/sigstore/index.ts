export { SigstoreBundleVerifier, type SigstoreVerifierOptions, type SigstoreVerifyRequest, type SigstoreVerification, type SigstoreThresholds } from './verifier.js';
export { SigstoreAttestationVerifier, verifierFor, SIGSTORE_BUNDLE_SUFFIX, type SigstoreAttestationVerifierOptions } from './attestation-verifier.js';
export {
  trustedRootFromJSON, loadTrustedRootFile, publicGoodTrustedRoot, publicGoodSeed, defaultTrustCacheDir, readTrustState,
  PUBLIC_GOOD_MIRROR, CACHED_ROOT_FILE, TRUST_STATE_FILE, type LoadedTrustedRoot, type TrustState,
} from './trusted-root.js';
export { certIdentity, checkIdentity, anchoredRegExp, assertIdentityPolicy, CLAIM_OIDS, LEGACY_CLAIM_OIDS, CLAIM_ALIASES, type IdentityPolicy, type CertIdentity } from './identity.js';
export { updateTrustedRoot, type TrustUpdateOptions, type TrustUpdateResult } from './tuf-refresh.js';
export { identityPolicyFromOptions, trustedRootFromOptions, thresholdsFromOptions, publicKeyFromFile, type SigstoreCliOptions } from './cli-options.js';
