/** AppArmor profiles: generated on the docker-default baseline, bundle text checked, linted. */
export { generateAppArmorProfile, type AppArmorRuntimeAsk } from './generate.js';
export { checkBundleAppArmor, type CheckedAppArmor } from './check.js';
export { lintAppArmor, type AppArmorLint } from './lint.js';
export { profileNameFor, sanitizeAppName, isHostProfileName, PROFILE_PREFIX } from './names.js';
export { renderBaseline, DOCKER_NETWORK_RULES, DOCKER_CAPABILITY_RULES } from './template.js';
