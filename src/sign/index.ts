export { signAttestationForCtp, signDsse, signMessage, type SigstoreSignOptions, type SerializedBundle } from './sigstore.js';
export { KeySigner } from './key-signer.js';
export { identityProvider, peekClaims } from './identity.js';
export { urlsFromSigningConfig, PUBLIC_GOOD, STAGING } from './signing-config.js';
export { buildStatement, subjectFor, assertStatement, STATEMENT_V1, type InTotoStatement, type InTotoSubject } from './statement.js';
