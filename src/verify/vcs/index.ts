export { parseVcsBundle, type ParsedVcsBundle, type ParsedAttestation, type ParsedLogEntry } from './parse.js';
export { verifyParsedVcsBundle, vcsVerifier, inferImageDigest, VCS_BUNDLE_PATH } from './verifier.js';
export { verifyVcsBundle, type VcsVerifyOptions } from './verify-bundle.js';
export { validateDocument, DOCUMENT_TYPES, type DocumentType, type ValidationResult } from './schemas.js';
export { cachedPublicKey } from './keys.js';
export { parseSvalinnPolicy, parseSvalinnPolicyText, type SvalinnPolicyV1, type LoadedPolicy } from './svalinn-v1.js';
