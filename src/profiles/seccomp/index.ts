/** Seccomp profiles: RuntimeDefault, bundle-supplied checks, confinement, recording output. */
export type { OciSeccomp, SeccompRule, SeccompArg, SeccompAction, SeccompOperator, DockerSeccompProfile } from './types.js';
export { runtimeDefault, resolveDockerProfile, hostGoArch, DOCKER_DEFAULT_CAPS, type ResolveOptions } from './runtime-default.js';
export { assertSeccompProfile, checkBundleSeccomp, missingStartupSyscalls } from './validate.js';
export { confines, type ConfinesOptions, type ConfinementReport, type ConfinementProblem } from './confines.js';
export { STARTUP_SYSCALLS_NNP, STARTUP_SYSCALLS_PRIVILEGED, startupSyscalls } from './startup.js';
export { allowListProfile, syscallName, syscallNumberTable } from './allow-list.js';
export { passedSyscalls, allowsUnconditionally } from './analyze.js';
