import { CtError } from '../../core/errors.js';
import { selinuxBlockName } from './generate.js';
import { TEMPLATE_BLOCK } from './template.js';

export const MAX_SELINUX_POLICY = 64 * 1024;

/**
 * Checks a bundle's `security/selinux/*.cil` before a host loads it: bounded, balanced, one block
 * named for the app that inherits the container template, and none of the statements that would
 * let it escape confinement (permissive types, unconfined attributes, new types outside its block,
 * global statements). The kernel's own compiler (secilc / semodule) judges the rest.
 */
export function checkBundleSelinux(text: string, appName: string): { block: string } {
  const bad = (message: string): CtError => new CtError('PROFILE_INVALID', `security/selinux: ${message}`, {});
  if (Buffer.byteLength(text) > MAX_SELINUX_POLICY) throw bad(`larger than ${MAX_SELINUX_POLICY} bytes`);
  // Comments out; strings are not part of the CIL a container policy needs.
  const code = text.replace(/;[^\n]*/g, '');
  if (code.includes('"')) throw bad('quoted strings are not allowed');
  let depth = 0;
  let blocks = 0;
  for (const m of code.matchAll(/[()]|[^\s()]+/g)) {
    if (m[0] === '(') depth++;
    else if (m[0] === ')') {
      depth--;
      if (depth < 0) throw bad('unbalanced parentheses');
    }
  }
  if (depth !== 0) throw bad('unbalanced parentheses');
  const top = [...code.matchAll(/\(\s*([a-z_]+)\s+([^\s()]+)/g)];
  const block = selinuxBlockName(appName);
  for (const [, keyword, name] of top) {
    if (keyword === 'block') {
      blocks++;
      if (name !== block) throw bad(`block ${name} is not the app's (${block})`);
    }
    if (['typepermissive', 'in', 'macro', 'call', 'typetransition', 'typechange', 'typemember', 'sid', 'sidcontext', 'classpermission'].includes(keyword)) throw bad(`${keyword} statements are not allowed`);
  }
  const escape = /[^\s()]*(unconfined|spc_t|kernel_t|permissive)[^\s()]*/.exec(code);
  if (escape) throw bad(`${escape[0]} is not allowed in a container policy`);
  if (blocks !== 1) throw bad(`exactly one block (${block}) is expected, found ${blocks}`);
  if (!new RegExp(`\\(\\s*blockinherit\\s+${TEMPLATE_BLOCK}\\s*\\)`).test(code)) throw bad(`the block must inherit ${TEMPLATE_BLOCK}`);
  if (/\(\s*typeattributeset\b/.test(code)) throw bad('typeattributeset is not allowed (it could join privileged attributes)');
  return { block };
}
