/**
 * JSON Schema validation of policy documents (policies/schema/*.schema.json) with Ajv, reporting
 * every error at the file:line:column of the source node it concerns.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import AjvModule, { type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { CtError } from '../core/errors.js';
import type { PolicyIssue } from './issues.js';
import { pointerToPath, type ParsedSource } from './source.js';

const Ajv = AjvModule as unknown as typeof AjvModule.default;
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/**
 * The schemas live in policies/schema/ at the package root (published with the package). This
 * module runs from src/policy (tests) and from build/src/policy (the binary), so look upwards.
 */
export function schemaDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'policies', 'schema');
    if (existsSync(join(candidate, 'policy-v2.schema.json'))) return candidate;
    dir = dirname(dir);
  }
  throw new CtError('IO_ERROR', 'policies/schema/ not found beside the installed package');
}

let validators: { v1: ValidateFunction; v2: ValidateFunction } | undefined;

function compiled(): { v1: ValidateFunction; v2: ValidateFunction } {
  if (!validators) {
    const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
    addFormats(ajv, ['date-time']);
    const dir = schemaDir();
    const load = (f: string) => JSON.parse(readFileSync(join(dir, f), 'utf8'));
    validators = { v1: ajv.compile(load('policy-v1.schema.json')), v2: ajv.compile(load('policy-v2.schema.json')) };
  }
  return validators;
}

export function validateAgainstSchema(which: 'v1' | 'v2', src: ParsedSource): PolicyIssue[] {
  const v = compiled()[which];
  if (v(src.value)) return [];
  return reduceErrors(v.errors ?? [], src.value).map((e) => toIssue(e, src));
}

/**
 * anyOf (matchers: string or object) makes Ajv report every branch. Keep what helps: when the
 * value is an object, the object branch's errors; otherwise the single anyOf error.
 */
function reduceErrors(errors: ErrorObject[], root: unknown): ErrorObject[] {
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const out: ErrorObject[] = [];
  for (const e of errors) {
    const underAnyOf = anyOfPaths.has(e.instancePath) || [...anyOfPaths].some((p) => e.instancePath.startsWith(`${p}/`));
    if (!underAnyOf) {
      out.push(e);
      continue;
    }
    const base = [...anyOfPaths].find((p) => e.instancePath === p || e.instancePath.startsWith(`${p}/`))!;
    const value = valueAt(root, base);
    const isObj = value !== null && typeof value === 'object' && !Array.isArray(value);
    if (isObj) {
      if (e.keyword !== 'anyOf' && !(e.keyword === 'type' && e.instancePath === base)) out.push(e);
    } else if (e.keyword === 'anyOf') out.push(e);
  }
  const seen = new Set<string>();
  return out.filter((e) => {
    const k = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function valueAt(root: unknown, pointer: string): unknown {
  let cur = root;
  for (const seg of pointer.split('/').slice(1)) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
  return cur;
}

/** Modes are named strict | permissive | audit everywhere (SPEC §7); help people coming from Kyverno / policy-controller. */
const KYVERNO_MODES: Record<string, string> = { enforce: 'strict', warn: 'permissive' };

function toIssue(e: ErrorObject, src: ParsedSource): PolicyIssue {
  const path = pointerToPath(e.instancePath, src.value);
  const where = e.instancePath || '(top level)';
  let at = src.locate(path);
  let message = `${where}: ${e.message ?? 'invalid'}`;
  if (e.keyword === 'additionalProperties') {
    const prop = String((e.params as { additionalProperty: string }).additionalProperty);
    at = src.locateKey(path, prop);
    message = `${where}: unknown field ${JSON.stringify(prop)}`;
  } else if (e.keyword === 'enum') {
    message = `${where}: must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues ?? []).map((x) => JSON.stringify(x)).join(', ')}`;
    const given = String(valueAt(src.value, e.instancePath)).toLowerCase();
    if (e.instancePath === '/mode' && KYVERNO_MODES[given]) message += ` (Kyverno's ${given} is ${KYVERNO_MODES[given]} here)`;
  } else if (e.keyword === 'const') {
    message = `${where}: must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}`;
  } else if (e.keyword === 'anyOf') {
    message = `${where}: must be a string or an object with exactly one of exact, glob, regex, oneOf`;
  } else if (e.keyword === 'maxProperties' && e.instancePath.includes('/conditions/')) {
    message = `${where}: a condition has a path and exactly one test (equals, exact, glob, regex, oneOf, exists)`;
  }
  return { ...at, severity: 'error', kind: 'schema', message };
}
