/** Turns an approved bundle's runtime asks, policy grants and profiles into an OCI runtime config. */
export { buildRuntimePlan, MASKED_PATHS, READONLY_PATHS } from './oci-config.js';
export { assertHostCanEnforce } from './requirements.js';
export { planAppArmor, loadAppArmor } from './apparmor.js';
export { resolveUser, NOBODY } from './user.js';
export type { EnforceInput, EnforcePlan, RuntimeAsk, RuntimeGrants, ImageDefaults, BundleProfiles, OciConfig, AppArmorPlan, Requirement } from './types.js';
