/** SELinux container policies: udica-style CIL generated from the manifest, bundle text checked. */
export { generateSelinuxPolicy, selinuxBlockName, type SelinuxRuntimeAsk } from './generate.js';
export { checkBundleSelinux, MAX_SELINUX_POLICY } from './check.js';
export { CONTAINER_TEMPLATE_CIL, TEMPLATE_BLOCK } from './template.js';
