/**
 * Resolves a GitLab CI/CD component the way GitLab does on `include: component:`: the header
 * (`spec: inputs`) declares inputs with defaults, `options`, `type`; the body after `---` has
 * `$[[ inputs.NAME ]]` interpolated textually before it is parsed as YAML. Unknown inputs,
 * missing required inputs, values outside `options` and wrongly typed values are errors, as in
 * GitLab.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { REPO } from './runner.js';

export interface InputSpec { default?: unknown; options?: unknown[]; type?: 'string' | 'number' | 'boolean' | 'array'; description?: string }
export type Job = Record<string, unknown> & { script?: unknown; variables?: Record<string, unknown>; id_tokens?: Record<string, { aud?: unknown }> };

export function readComponent(rel: string): { spec: Record<string, InputSpec>; body: string } {
  const text = readFileSync(join(REPO, rel), 'utf8');
  const parts = text.split(/^---\s*$/m);
  if (parts.length !== 2) throw new Error(`${rel}: expected a spec header and one body separated by ---`);
  const header = parseYaml(parts[0]) as { spec?: { inputs?: Record<string, InputSpec | null> } };
  const spec = Object.fromEntries(Object.entries(header.spec?.inputs ?? {}).map(([k, v]) => [k, v ?? {}]));
  return { spec, body: parts[1] };
}

export function resolveComponent(rel: string, given: Record<string, unknown>): Record<string, Job> {
  const { spec, body } = readComponent(rel);
  for (const k of Object.keys(given)) if (!(k in spec)) throw new Error(`unknown input: ${k}`);
  const values: Record<string, unknown> = {};
  for (const [k, s] of Object.entries(spec)) {
    const v = k in given ? given[k] : s.default;
    if (v === undefined) throw new Error(`\`${k}\` input: required value not provided`);
    const type = s.type ?? 'string';
    if (type === 'number' && typeof v !== 'number') throw new Error(`\`${k}\` input: provided value is not a number`);
    if (type === 'boolean' && typeof v !== 'boolean') throw new Error(`\`${k}\` input: provided value is not a boolean`);
    if (type === 'string' && typeof v !== 'string') throw new Error(`\`${k}\` input: provided value is not a string`);
    if (s.options && !s.options.includes(v)) throw new Error(`\`${k}\` input: \`${String(v)}\` cannot be used because it is not in the list of allowed options`);
    values[k] = v;
  }
  const text = body.replace(/\$\[\[\s*inputs\.([\w-]+)\s*\]\]/g, (_m, name: string) => {
    if (!(name in values)) throw new Error(`unknown interpolation key: ${name}`);
    return String(values[name]);
  });
  if (text.includes('$[[')) throw new Error('unresolved interpolation left in the body');
  return parseYaml(text) as Record<string, Job>;
}
