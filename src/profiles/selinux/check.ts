import { CtError } from '../../core/errors.js';
import { selinuxBlockName } from './generate.js';
import { TEMPLATE_BLOCK } from './template.js';

export const MAX_SELINUX_POLICY = 64 * 1024;
/** block → statement → class-permission list → permissions: a container policy needs four levels. */
const MAX_DEPTH = 8;

type Sexp = string | Sexp[];

/**
 * The statements of the text, read without recursion (a 64 KiB text of `(` would otherwise be a
 * 32,000-frame parse) and at most MAX_DEPTH lists deep.
 */
function readCil(code: string, bad: (m: string) => CtError): Sexp[] {
  const top: Sexp[] = [];
  const stack: Sexp[][] = [top];
  for (const m of code.matchAll(/[()]|[^\s()]+/g)) {
    if (m[0] === '(') {
      if (stack.length > MAX_DEPTH) throw bad(`nested deeper than ${MAX_DEPTH} lists`);
      const list: Sexp[] = [];
      stack[stack.length - 1].push(list);
      stack.push(list);
    } else if (m[0] === ')') {
      if (stack.length === 1) throw bad('unbalanced parentheses');
      stack.pop();
    } else {
      stack[stack.length - 1].push(m[0]);
    }
  }
  if (stack.length !== 1) throw bad('unbalanced parentheses');
  return top;
}

const atom = (s: Sexp | undefined): s is string => typeof s === 'string';
const show = (s: Sexp): string => (atom(s) ? s : `(${s.map(show).join(' ')})`).slice(0, 120);

/** Permissions that let a process become another domain: the container's type may only be itself. */
const DOMAIN_CHANGE = new Set(['transition', 'dyntransition', 'setcurrent', 'setexec', 'nnp_transition', 'nosuid_transition']);

/**
 * Checks a bundle's `security/selinux/*.cil` before a host loads it (semodule: into the kernel's
 * policy for the whole host). It may hold exactly one block, named for the app, and in it only:
 *  - `(blockinherit ct_container)` (required) and `(blockinherit ct_container_net)`;
 *  - `(allow|auditallow|dontaudit process TARGET (CLASS (PERMS…)))`: rules whose source is the
 *    block's own process type, never a domain change (transition, dyntransition, setcurrent, …).
 * Anything else is refused, not judged: a statement outside the block is global (`(allow domain
 * shadow_t …)` speaks for every process of the host), and inside it a name that is not the
 * block's resolves outward, so `(allow domain …)` in the block is just as global. Names that
 * could only mean an escape (unconfined, spc_t, kernel_t, permissive) are refused anywhere. The
 * kernel's own compiler (secilc / semodule) judges that the types and classes exist.
 */
export function checkBundleSelinux(text: string, appName: string): { block: string } {
  const bad = (message: string): CtError => new CtError('PROFILE_INVALID', `security/selinux: ${message}`, {});
  if (Buffer.byteLength(text) > MAX_SELINUX_POLICY) throw bad(`larger than ${MAX_SELINUX_POLICY} bytes`);
  // Comments out; strings are not part of the CIL a container policy needs.
  const code = text.replace(/;[^\n]*/g, '');
  if (code.includes('"')) throw bad('quoted strings are not allowed');
  const top = readCil(code, bad);
  const escape = /[^\s()]*(unconfined|spc_t|kernel_t|permissive)[^\s()]*/.exec(code);
  if (escape) throw bad(`${escape[0]} is not allowed in a container policy`);
  const block = selinuxBlockName(appName);
  const blocks = top.filter((s) => !atom(s) && s[0] === 'block');
  if (blocks.length !== 1) throw bad(`exactly one block (${block}) is expected, found ${blocks.length}`);
  const other = top.find((s) => atom(s) || s[0] !== 'block');
  if (other !== undefined) throw bad(`${show(other)}: only the app's block may be at the top level (anything else is global)`);
  const [, name, ...body] = blocks[0] as Sexp[];
  if (name !== block) throw bad(`block ${atom(name) ? name : show(name)} is not the app's (${block})`);
  let inherits = false;
  for (const st of body) {
    if (atom(st) || !atom(st[0])) throw bad(`${show(st)}: not a statement`);
    const keyword = st[0];
    if (keyword === 'blockinherit') {
      if (st.length !== 2 || (st[1] !== TEMPLATE_BLOCK && st[1] !== `${TEMPLATE_BLOCK}_net`)) throw bad(`${show(st)}: only ${TEMPLATE_BLOCK} and ${TEMPLATE_BLOCK}_net may be inherited`);
      if (st[1] === TEMPLATE_BLOCK) inherits = true;
    } else if (keyword === 'allow' || keyword === 'auditallow' || keyword === 'dontaudit') {
      const [, source, target, classPerms] = st;
      if (st.length !== 4 || source !== 'process' || !atom(target)) throw bad(`${show(st)}: a rule's source must be the block's own type (process)`);
      const [cls, perms] = atom(classPerms) ? [] : classPerms;
      if (atom(classPerms) || classPerms.length !== 2 || !atom(cls) || atom(perms) || perms === undefined || !perms.every(atom)) {
        throw bad(`${show(st)}: permissions must be written out as (class (perm …))`);
      }
      const change = (perms as string[]).find((p) => DOMAIN_CHANGE.has(p));
      if ((cls === 'process' || cls === 'process2') && change) throw bad(`${show(st)}: ${change} would let the container become another domain`);
    } else {
      throw bad(`${keyword} statements are not allowed (only blockinherit, allow, auditallow, dontaudit)`);
    }
  }
  if (!inherits) throw bad(`the block must inherit ${TEMPLATE_BLOCK}`);
  return { block };
}
