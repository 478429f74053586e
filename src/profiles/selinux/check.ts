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
 * A permission or class is a plain name. CIL reads some words in a permission list as operators
 * over the class's permissions: `(process (all))` is every process permission, transition
 * included, and `(not (signal))` nearly all of them; no such word is a permission name.
 */
const NAME = /^[a-z][a-z0-9_]*$/;
const PERMISSION_OPERATORS = new Set(['all', 'not', 'and', 'or', 'xor', 'range']);

/**
 * Powers over the host rather than over the container, refused whatever the target: a bundle's
 * policy joins the host's kernel policy, and a grant here is one for the container's processes.
 *  - class `security` (setenforce, load_policy, setbool, …): the policy and its enforcement;
 *  - class `system` module_load/reload/enable/disable/halt…: the kernel and the init system;
 *  - `capability2 mac_admin/mac_override`: SELinux's own capability to override or redefine labels;
 *  - relabelfrom/relabelto (any class): moving a host object into or out of a type is how the
 *    container's files would become the host's (or the host's its own).
 * And in `process`/`process2`, toward anything but its own type: ptrace (reading and driving
 * another domain's processes), besides the domain changes above.
 */
const HOST_CLASSES = new Set(['security']);
const HOST_PERMISSIONS = new Map<string, Set<string>>([
  ['system', new Set(['module_load', 'module_request', 'reload', 'enable', 'disable', 'halt', 'reboot', 'start', 'stop'])],
  ['capability2', new Set(['mac_admin', 'mac_override'])],
]);
const RELABEL = new Set(['relabelfrom', 'relabelto']);
const OWN_TYPES = new Set(['process', 'self']);

/**
 * Checks a bundle's `security/selinux/*.cil` before a host loads it (semodule: into the kernel's
 * policy for the whole host). It may hold exactly one block, named for the app, and in it only:
 *  - `(blockinherit ct_container)` (required) and `(blockinherit ct_container_net)`;
 *  - `(allow|auditallow|dontaudit process TARGET (CLASS (PERMS…)))`: rules whose source is the
 *    block's own process type, permissions written out by name (no `all`, `not`, …), never a
 *    domain change (transition, dyntransition, setcurrent, …) nor a power over the host (class
 *    security, relabeling, mac_admin, ptrace of other domains: HOST_CLASSES below).
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
      const names = perms as string[];
      const odd = [cls, ...names].find((p) => !NAME.test(p) || PERMISSION_OPERATORS.has(p));
      if (odd !== undefined) throw bad(`${show(st)}: ${odd} is not a class or permission name (write each permission out)`);
      if (HOST_CLASSES.has(cls)) throw bad(`${show(st)}: class ${cls} is the host's policy itself`);
      const host = names.find((p) => RELABEL.has(p) || HOST_PERMISSIONS.get(cls)?.has(p));
      if (host) throw bad(`${show(st)}: ${host} is a power over the host, not the container`);
      if (cls === 'process' || cls === 'process2') {
        const change = names.find((p) => DOMAIN_CHANGE.has(p));
        if (change) throw bad(`${show(st)}: ${change} would let the container become another domain`);
        if (names.includes('ptrace') && !OWN_TYPES.has(target)) throw bad(`${show(st)}: ptrace of another domain's processes`);
      }
    } else {
      throw bad(`${keyword} statements are not allowed (only blockinherit, allow, auditallow, dontaudit)`);
    }
  }
  if (!inherits) throw bad(`the block must inherit ${TEMPLATE_BLOCK}`);
  return { block };
}
