/**
 * GitLab CI/CD components resolved the way GitLab resolves them on `include: component:`:
 * - the address `<fqdn>/<project path>/<name>@<version>` names `templates/<name>.yml` or
 *   `templates/<name>/template.yml` of the project, nothing else (a name has no `/`);
 * - the header (`spec: inputs`) declares inputs with defaults, `options`, `type`, `regex`;
 *   unknown inputs, missing required ones, values outside `options` and wrongly typed values are
 *   errors, as in GitLab;
 * - in the body after `---`, a scalar that is exactly one `$[[ inputs.NAME ]]` takes the input's
 *   value with its type; a block inside a longer string is replaced by the value's text.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, parseDocument, visit, type Node } from 'yaml';
import { REPO } from './runner.js';

export interface InputSpec { default?: unknown; options?: unknown[]; type?: 'string' | 'number' | 'boolean' | 'array'; description?: string; regex?: string }
export type Job = Record<string, unknown> & { script?: unknown; variables?: Record<string, unknown>; id_tokens?: Record<string, { aud?: unknown }> };

/** This project's path on GitLab: components of other projects cannot be resolved here. */
export const PROJECT_PATH = 'cerro-torre/cerro-torre';

/**
 * GitLab's component path rule: the repository-relative file a `component:` address resolves to
 * in this repository, or an error saying which files GitLab would have looked for.
 */
export function componentFile(address: string, root = REPO): string {
  if (address.includes('://')) throw new Error(`component \`${address}\` should not contain a protocol`);
  const m = /^(?<fqdn>[^/\s]+)\/(?<project>.+)\/(?<name>[^/@\s]+)@(?<version>[^@\s]+)$/.exec(address);
  if (!m?.groups) throw new Error(`component \`${address}\`: expected <fqdn>/<project path>/<name>@<version>`);
  const { project, name } = m.groups;
  if (project !== PROJECT_PATH) throw new Error(`component \`${address}\`: project ${project} is not ${PROJECT_PATH}`);
  const candidates = [`templates/${name}.yml`, `templates/${name}/template.yml`];
  const found = candidates.filter((f) => existsSync(join(root, f)));
  if (found.length !== 1) {
    throw new Error(found.length === 0
      ? `component \`${address}\` does not exist: none of ${candidates.join(', ')} is in ${project}`
      : `component \`${address}\` is ambiguous: both ${candidates.join(' and ')} exist`);
  }
  return found[0];
}

export function readComponent(rel: string): { header: unknown; spec: Record<string, InputSpec>; body: string } {
  const text = readFileSync(join(REPO, rel), 'utf8');
  const parts = text.split(/^---\s*$/m);
  if (parts.length !== 2) throw new Error(`${rel}: expected a spec header and one body separated by ---`);
  const header = parseYaml(parts[0]) as { spec?: { inputs?: Record<string, InputSpec | null> } };
  const spec = Object.fromEntries(Object.entries(header.spec?.inputs ?? {}).map(([k, v]) => [k, v ?? {}]));
  return { header, spec, body: parts[1] };
}

function typeOf(v: unknown): string {
  return Array.isArray(v) ? 'array' : typeof v;
}

/** The inputs' values as GitLab computes them: given values checked against the spec, defaults filled in. */
export function inputValues(spec: Record<string, InputSpec>, given: Record<string, unknown>): Record<string, unknown> {
  for (const k of Object.keys(given)) if (!(k in spec)) throw new Error(`unknown input: ${k}`);
  const values: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(spec)) {
    const v = k in given ? given[k] : s.default;
    if (v === undefined) throw new Error(`\`${k}\` input: required value not provided`);
    const type = s.type ?? 'string';
    if (typeOf(v) !== type) throw new Error(`\`${k}\` input: provided value is not a ${type}`);
    if (s.options && !s.options.includes(v)) throw new Error(`\`${k}\` input: \`${String(v)}\` cannot be used because it is not in the list of allowed options`);
    if (s.regex && !new RegExp(s.regex.replace(/^\/|\/$/g, '')).test(String(v))) throw new Error(`\`${k}\` input: provided value does not match required RegEx pattern`);
    values[k] = v;
  }
  return values;
}

const BLOCK = /\$\[\[\s*inputs\.([\w-]+)\s*\]\]/g;
const WHOLE = /^\$\[\[\s*inputs\.([\w-]+)\s*\]\]$/;

/** Interpolates `$[[ inputs.* ]]` into a component body (keys and values), keeping types of whole-scalar blocks. */
export function interpolate(body: string, values: Record<string, unknown>): Record<string, Job> {
  const value = (name: string): unknown => {
    if (!(name in values)) throw new Error(`unknown interpolation key: \`${name}\``);
    return values[name];
  };
  const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
  const doc = parseDocument(body);
  if (doc.errors.length) throw new Error(`invalid YAML: ${doc.errors[0].message}`);
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('$[[')) return undefined;
      const whole = WHOLE.exec(node.value);
      if (whole) return doc.createNode(value(whole[1])) as Node;
      node.value = node.value.replace(BLOCK, (_m, name: string) => text(value(name)));
      return undefined;
    },
  });
  const out = doc.toJS() as Record<string, Job>;
  const left = JSON.stringify(out).match(/\$\[\[[^\]]*\]\]/);
  if (left) throw new Error(`unresolved interpolation: ${left[0]}`);
  return out;
}

export function resolveComponent(rel: string, given: Record<string, unknown>): Record<string, Job> {
  const { spec, body } = readComponent(rel);
  return interpolate(body, inputValues(spec, given));
}

/** `include:` of a pipeline, normalized to a list of entries. */
export function includesOf(pipeline: Record<string, unknown>): Record<string, unknown>[] {
  const inc = pipeline.include;
  if (inc === undefined) return [];
  const list = Array.isArray(inc) ? inc : [inc];
  return list.map((e) => (typeof e === 'string' ? { local: e } : (e as Record<string, unknown>)));
}

/** A pipeline with its component includes merged in (GitLab merges the included jobs into the pipeline). */
export function expandPipeline(pipeline: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...pipeline };
  delete merged.include;
  for (const inc of includesOf(pipeline)) {
    if (typeof inc.component !== 'string') throw new Error(`only component includes are resolved here, got ${JSON.stringify(inc)}`);
    Object.assign(merged, resolveComponent(componentFile(inc.component), (inc.inputs ?? {}) as Record<string, unknown>));
  }
  return merged;
}
