/**
 * GitLab CI YAML as GitLab accepts it. templates/ holds GitLab CI/CD components only, each laid out
 * as GitLab resolves `include: component:` (templates/<name>.yml or templates/<name>/template.yml);
 * every `include: component:` in the repository resolves by that rule; every component (its
 * `spec:` header and its body with `$[[ inputs.* ]]` interpolated) and every pipeline (as written
 * and with its components merged in) validates against GitLab's CI JSON schema
 * (app/assets/javascripts/editor/schema/ci.json of gitlab-org/gitlab, MIT, as shipped verbatim by
 * the gitlab-ci-local package in src/schema/schema.js).
 */
import { describe, it, expect } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
// @ts-expect-error: plain JavaScript module without types (GitLab's ci.json as an object).
import { schema as gitlabCiSchema } from 'gitlab-ci-local/src/schema/schema.js';
import { REPO } from './runner.js';
import { ciFiles, componentNameOf } from './ci-files.js';
import { componentFile, expandPipeline, includesOf, inputValues, interpolate, readComponent, resolveComponent, type InputSpec } from './gitlab-components.js';

const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
const validateCi = ajv.compile(gitlabCiSchema as object);
function schemaErrors(doc: unknown): string[] {
  return validateCi(doc) ? [] : (validateCi.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

const files = ciFiles();
const components = files.templates.map((f) => [componentNameOf(f) ?? f, f] as const);
const readYaml = (rel: string) => parseYaml(readFileSync(join(REPO, rel), 'utf8')) as Record<string, unknown>;

/** A value of the input's type for inputs without a default (what a user must pass). */
function sample(s: InputSpec): unknown {
  if (s.options?.length) return s.options[0];
  return { number: 1, boolean: true, array: [] as unknown[], string: 'x' }[s.type ?? 'string'];
}

describe('templates/ holds GitLab CI/CD components laid out as GitLab resolves them', () => {
  it('every file under templates/ is templates/<name>.yml or templates/<name>/template.yml', () => {
    expect(files.templates.filter((f) => componentNameOf(f) === undefined)).toEqual([]);
    expect(components.map(([n]) => n)).toEqual(expect.arrayContaining(['build-sign', 'verify', 'deploy', 'policy-check']));
  });

  it('every `include: component:` in the repository resolves to exactly one component file', () => {
    const addresses = files.pipelines.flatMap((p) => includesOf(readYaml(p)).map((i) => i.component)).filter((c): c is string => typeof c === 'string');
    expect(addresses.length).toBeGreaterThanOrEqual(4);
    for (const a of addresses) expect(componentNameOf(componentFile(a))).toBe(/\/([^/@]+)@/.exec(a)![1]);
  });

  it('the resolution rule refuses a name that does not exist, a path inside templates/, another project', () => {
    expect(() => componentFile('$CI_SERVER_FQDN/cerro-torre/cerro-torre/no-such-thing@1')).toThrow(
      'component `$CI_SERVER_FQDN/cerro-torre/cerro-torre/no-such-thing@1` does not exist: none of templates/no-such-thing.yml, templates/no-such-thing/template.yml is in cerro-torre/cerro-torre');
    // The old layout's address: GitLab reads "gitlab" as part of the project path, never as a folder of templates/.
    expect(() => componentFile('$CI_SERVER_FQDN/cerro-torre/cerro-torre/gitlab/verify@1')).toThrow(/project cerro-torre\/cerro-torre\/gitlab is not/);
    expect(() => componentFile('https://gitlab.com/cerro-torre/cerro-torre/verify@1')).toThrow(/protocol/);
    expect(() => componentFile('$CI_SERVER_FQDN/cerro-torre/cerro-torre/verify')).toThrow(/<name>@<version>/);
  });
});

describe("GitLab's CI JSON schema", () => {
  it('the schema is the real one (rejects an unknown job keyword and a script that is a number)', () => {
    expect(schemaErrors({ job: { script: ['true'] } })).toEqual([]);
    expect(schemaErrors({ job: { script: ['true'], scirpt: 'x' } }).length).toBeGreaterThan(0);
    expect(schemaErrors({ job: { script: 3 } }).length).toBeGreaterThan(0);
  });

  it.each(components)('component %s: the spec header and the body with inputs interpolated are valid', (_name, file) => {
    const { header, spec, body } = readComponent(file);
    expect(schemaErrors(header)).toEqual([]);
    const required = Object.fromEntries(Object.entries(spec).filter(([, s]) => s.default === undefined).map(([k, s]) => [k, sample(s)]));
    const jobs = interpolate(body, inputValues(spec, required));
    expect(Object.keys(jobs).length).toBeGreaterThan(0);
    expect(schemaErrors(jobs)).toEqual([]);
  });

  it.each(files.pipelines)('pipeline %s is valid as written and with its components merged in', (file) => {
    const doc = readYaml(file);
    expect(schemaErrors(doc)).toEqual([]);
    expect(schemaErrors(expandPipeline(doc))).toEqual([]);
  });

  it('interpolation keeps the type of a whole-value block and writes text inside a longer string', () => {
    const { spec, body } = readComponent('templates/build-sign.yml');
    const jobs = interpolate(body, inputValues(spec, { 'job-name': 'sign-it', 'log-quorum': 3, sbom: false }));
    expect(Object.keys(jobs)).toEqual(['sign-it']);
    const v = jobs['sign-it'].variables!;
    expect([v.CT_LOG_QUORUM, v.CT_SBOM, v.CT_PATH]).toEqual([3, false, '.']);
    expect(interpolate('j:\n  script: ["echo $[[ inputs.n ]] items"]\n', { n: 2 })).toEqual({ j: { script: ['echo 2 items'] } });
  });

  it('a wrong input type, an unknown input, a value outside options fail with a clear message', () => {
    expect(() => resolveComponent('templates/build-sign.yml', { 'log-quorum': 'two' })).toThrow('`log-quorum` input: provided value is not a number');
    expect(() => resolveComponent('templates/build-sign.yml', { sbom: 'yes' })).toThrow('`sbom` input: provided value is not a boolean');
    expect(() => resolveComponent('templates/verify.yml', { policy: 7 })).toThrow('`policy` input: provided value is not a string');
    expect(() => resolveComponent('templates/verify.yml', { policy: 'p', nope: 1 })).toThrow('unknown input: nope');
    expect(() => resolveComponent('templates/build-sign.yml', { signing: 'magic' })).toThrow(/not in the list of allowed options/);
    expect(() => interpolate('j:\n  script: ["$[[ inputs.missing ]]"]\n', {})).toThrow('unknown interpolation key: `missing`');
  });

  it('a pipeline including a component that does not exist fails to expand', () => {
    const doc = { stages: ['test'], include: [{ component: '$CI_SERVER_FQDN/cerro-torre/cerro-torre/verfiy@1', inputs: { policy: 'p' } }] };
    expect(schemaErrors(doc)).toEqual([]);
    expect(() => expandPipeline(doc)).toThrow(/verfiy@1` does not exist/);
  });
});
