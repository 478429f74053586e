import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { CtError } from '../../core/errors.js';
import { OCI_SCHEMAS } from './oci-schema.js';
import { allowsUnconditionally } from './analyze.js';
import { startupSyscalls } from './startup.js';
import type { OciSeccomp } from './types.js';

let compiled: ValidateFunction | undefined;

/**
 * The OCI schema of `linux.seccomp`, compiled once. The upstream files are draft-04 without `$id`;
 * they are registered under their file names so that their relative `$ref`s resolve, and Ajv's
 * strict mode is off because draft-04 keywords like `description` beside `$ref` are legal there.
 */
function schemaValidator(): ValidateFunction {
  if (compiled) return compiled;
  const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
  for (const [name, schema] of Object.entries(OCI_SCHEMAS)) ajv.addSchema(schema, name);
  compiled = ajv.compile({ $ref: 'config-linux.json#/linux/properties/seccomp' });
  return compiled;
}

const TOP_KEYS = new Set(['defaultAction', 'defaultErrnoRet', 'architectures', 'flags', 'listenerPath', 'listenerMetadata', 'syscalls']);
const RULE_KEYS = new Set(['names', 'action', 'errnoRet', 'args']);
const ARG_KEYS = new Set(['index', 'value', 'valueTwo', 'op']);
const SYSCALL_NAME = /^[a-z0-9_]{1,64}$/;

function describe(e: ErrorObject): string {
  return `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`;
}

/**
 * Checks a bundle-supplied profile: the OCI schema, then what the schema leaves open but runc would
 * silently ignore or misread. Unknown keys are errors (a Docker-format `includes` would look like a
 * restriction and restrict nothing), so are syscall names that are not plain identifiers. Reports
 * every problem at once.
 */
export function assertSeccompProfile(value: unknown, where = 'security/seccomp.json'): asserts value is OciSeccomp {
  const problems: string[] = [];
  const validate = schemaValidator();
  if (!validate(value)) problems.push(...(validate.errors ?? []).map(describe));
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const v = value as Record<string, unknown>;
    for (const k of Object.keys(v)) if (!TOP_KEYS.has(k)) problems.push(`/${k} is not an OCI seccomp field`);
    if (Array.isArray(v.syscalls)) {
      v.syscalls.forEach((rule, i) => {
        if (!rule || typeof rule !== 'object') return;
        const r = rule as Record<string, unknown>;
        for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) problems.push(`/syscalls/${i}/${k} is not an OCI seccomp field`);
        if (Array.isArray(r.names)) {
          r.names.forEach((n, j) => {
            if (typeof n === 'string' && !SYSCALL_NAME.test(n)) problems.push(`/syscalls/${i}/names/${j} is not a syscall name`);
          });
        }
        if (Array.isArray(r.args)) {
          r.args.forEach((a, j) => {
            if (a && typeof a === 'object') {
              for (const k of Object.keys(a)) if (!ARG_KEYS.has(k)) problems.push(`/syscalls/${i}/args/${j}/${k} is not an OCI seccomp field`);
            }
          });
        }
      });
    }
  }
  if (problems.length > 0) {
    throw new CtError('PROFILE_INVALID', `${where}: not a valid OCI seccomp profile: ${problems.join('; ')}`, { path: where, problems });
  }
}

/** Start-up syscalls (startup.ts) that `profile` does not allow unconditionally. */
export function missingStartupSyscalls(profile: OciSeccomp, noNewPrivileges = true): string[] {
  return startupSyscalls(noNewPrivileges).filter((n) => !allowsUnconditionally(profile, n));
}

/** Validates a bundle-supplied profile and checks it lets runc start the container. */
export function checkBundleSeccomp(value: unknown, where = 'security/seccomp.json'): OciSeccomp {
  assertSeccompProfile(value, where);
  const missing = missingStartupSyscalls(value);
  if (missing.length > 0) {
    throw new CtError(
      'PROFILE_MISSING_STARTUP_SYSCALLS',
      `${where}: denies syscalls runc needs to start the container: ${missing.join(', ')}`,
      { path: where, missing },
    );
  }
  return value;
}
