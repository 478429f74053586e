export { signAttestationForCtp, signDsse, signMessage, type SigstoreSignOptions, type SerializedBundle } from './sigstore.js';
export { KeySigner } from './key-signer.js';
export { identityProvider } from './identity.js';
export { urlsFromSigningConfig, PUBLIC_GOOD, STAGING } from './signing-config.js';
export { buildStatement, assertStatement, STATEMENT_TYPE_V1, type Statement, type Subject } from './statement.js';
