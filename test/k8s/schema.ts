/**
 * Schema validation of Kubernetes objects for the tests, as strict as `kubectl apply
 * --validate=strict` against a current cluster:
 * - built-in kinds: the validators of `kubernetes-models` (generated from the Kubernetes OpenAPI
 *   description: types, formats, enums, required fields), plus unknown-field detection from the
 *   models of `@kubernetes/client-node` (the OpenAPI description does not forbid extra fields;
 *   the API server drops or rejects them, either way a typo would go unnoticed);
 * - SPO kinds: the CRD's openAPIV3Schema (test/k8s/schemas/spo-crds.yaml) with Ajv, unknown
 *   fields refused where the API server would prune them;
 * - cert-manager kinds: the validators of `@kubernetes-models/cert-manager` (generated from
 *   cert-manager's CRDs), plus unknown fields found from that package's type declarations (its
 *   validators accept any extra field; the API server prunes them, `kubectl --validate=strict`
 *   refuses them).
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import YAML from 'yaml';
import * as models from '@kubernetes/client-node/dist/gen/models/all.js';
import { unknownCertManagerFields } from './cert-manager-fields.js';

type Obj = Record<string, unknown>;

const BUILTIN: Record<string, string> = {
  v1: 'v1',
  'apps/v1': 'apps/v1',
  'batch/v1': 'batch/v1',
  'policy/v1': 'policy/v1',
  'rbac.authorization.k8s.io/v1': 'rbac.authorization.k8s.io/v1',
  'admissionregistration.k8s.io/v1': 'admissionregistration.k8s.io/v1',
};

interface Crd {
  group: string;
  kind: string;
  scope: 'Cluster' | 'Namespaced';
  version: string;
  openAPIV3Schema: Obj;
}

const crds = YAML.parse(readFileSync(new URL('./schemas/spo-crds.yaml', import.meta.url), 'utf8')) as Record<string, Crd>;

/** Unknown fields are pruned by the API server wherever a structural schema lists properties. */
function structural(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(structural);
  if (typeof s !== 'object' || s === null) return s;
  const out: Obj = {};
  for (const [k, v] of Object.entries(s as Obj)) if (!k.startsWith('x-kubernetes-') && k !== 'default') out[k] = structural(v);
  if (out.type === 'object' && out.properties && out.additionalProperties === undefined && !(s as Obj)['x-kubernetes-preserve-unknown-fields']) out.additionalProperties = false;
  return out;
}

const ajv = new Ajv({ allErrors: true, strict: false });
ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
const crdValidators = new Map<string, { crd: Crd; validate: ValidateFunction }>();
for (const crd of Object.values(crds)) {
  const schema = structural(crd.openAPIV3Schema) as Obj;
  // metadata is the API server's ObjectMeta; only name matters to a cluster-scoped profile.
  (schema.properties as Obj).metadata = { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$', maxLength: 253 }, labels: { type: 'object' }, annotations: { type: 'object' } }, additionalProperties: false };
  crdValidators.set(`${crd.group}/${crd.version}/${crd.kind}`, { crd, validate: ajv.compile(schema) });
}

type ModelClass = { getAttributeTypeMap(): { baseName: string; type: string }[] };

function unknownFields(value: unknown, type: string, path: string, out: string[]): void {
  if (value === null || value === undefined) return;
  let m = /^Array<(.+)>$/.exec(type);
  if (m) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, m![1], `${path}[${i}]`, out));
    return;
  }
  m = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (m) {
    if (typeof value === 'object') for (const [k, v] of Object.entries(value as Obj)) unknownFields(v, m[1], `${path}.${k}`, out);
    return;
  }
  const cls = (models as unknown as Record<string, ModelClass | undefined>)[type];
  if (!cls || typeof cls.getAttributeTypeMap !== 'function' || typeof value !== 'object' || Array.isArray(value)) return;
  const known = new Map(cls.getAttributeTypeMap().map((a) => [a.baseName, a.type]));
  for (const [k, v] of Object.entries(value as Obj)) {
    const t = known.get(k);
    if (t === undefined) out.push(`${path}.${k}: unknown field (not in ${type})`);
    else unknownFields(v, t, `${path}.${k}`, out);
  }
}

// Jest's ESM loader fails concurrent first imports that share a dependency: one at a time.
let chain: Promise<unknown> = Promise.resolve();
function load(spec: string): Promise<unknown> {
  const p = chain.then(() => import(spec));
  chain = p.catch(() => undefined);
  return p;
}

/** Every problem of one object; empty when it is valid. */
export async function validateK8s(obj: Obj): Promise<string[]> {
  const apiVersion = String(obj.apiVersion);
  const kind = String(obj.kind);
  const where = `${kind}/${String((obj.metadata as Obj | undefined)?.name ?? '?')}`;
  const crd = crdValidators.get(`${apiVersion}/${kind}`);
  if (crd) {
    const problems: string[] = [];
    if (crd.crd.scope === 'Cluster' && (obj.metadata as Obj | undefined)?.namespace !== undefined) problems.push(`${where}: ${kind} is cluster-scoped, metadata.namespace must not be set`);
    if (!crd.validate(obj)) problems.push(...(crd.validate.errors ?? []).map((e) => `${where}${e.instancePath}: ${e.message}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`));
    return problems;
  }
  const certManager = apiVersion === 'cert-manager.io/v1';
  const dir = certManager ? '@kubernetes-models/cert-manager/cert-manager.io/v1' : BUILTIN[apiVersion] && `kubernetes-models/${BUILTIN[apiVersion]}`;
  if (!dir) return [`${where}: no schema for ${apiVersion} ${kind}`];
  let mod: Record<string, new (data: unknown) => { validate(): void }>;
  try {
    mod = (await load(`${dir}/${kind}`)) as typeof mod;
  } catch (e) {
    return [`${where}: ${apiVersion} ${kind} is not a kind of this Kubernetes release (${(e as Error).message.split('\n')[0]})`];
  }
  const problems: string[] = [];
  try {
    new mod[kind](obj).validate();
  } catch (e) {
    const details = (e as { details?: { instancePath?: string; message?: string }[] }).details;
    problems.push(...(details?.length ? details.map((d) => `${where}${d.instancePath ?? ''}: ${d.message ?? ''}`) : [`${where}: ${(e as Error).message}`]));
  }
  if (certManager) problems.push(...unknownCertManagerFields(obj, kind, where));
  else unknownFields(obj, `V1${kind}`, where, problems);
  return problems;
}

export function parseYamlDocs(text: string): Obj[] {
  return YAML.parseAllDocuments(text).map((d) => d.toJS() as Obj).filter((d) => d !== null);
}
