/**
 * What SPDX tools require of an SPDX 2.3 JSON document: the official JSON schema
 * (spdx-2.3.schema.json beside this file) and the rules of the SPDX project's validator
 * (tools-java / spdx-tools) that the schema cannot express. Returns every broken rule, [] when valid.
 */
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import Ajv2019Module from 'ajv/dist/2019.js';

const Ajv2019 = Ajv2019Module as unknown as typeof Ajv2019Module.default;
const schema = JSON.parse(readFileSync(new URL('./spdx-2.3.schema.json', import.meta.url), 'utf8')) as object;
const validateSchema = new Ajv2019({ strict: false, allErrors: true }).compile(schema);

interface Checksum { algorithm: string; checksumValue: string }
interface Doc {
  spdxVersion?: string; dataLicense?: string; SPDXID?: string; creationInfo?: { created?: string };
  packages?: { SPDXID: string; filesAnalyzed?: boolean; hasFiles?: string[]; packageVerificationCode?: { packageVerificationCodeValue: string } }[];
  files?: { SPDXID: string; fileName: string; checksums: Checksum[] }[];
  relationships?: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
}

export function spdxProblems(input: unknown, opts: { sourceDateEpoch?: string } = {}): string[] {
  const problems: string[] = [];
  if (!validateSchema(input)) for (const e of validateSchema.errors ?? []) problems.push(`schema: ${e.instancePath || '/'} ${e.message ?? ''}`);
  const d = input as Doc;
  if (d.spdxVersion !== 'SPDX-2.3') problems.push(`spdxVersion is ${String(d.spdxVersion)}, not SPDX-2.3`);
  if (d.dataLicense !== 'CC0-1.0') problems.push('dataLicense must be CC0-1.0');
  if (d.SPDXID !== 'SPDXRef-DOCUMENT') problems.push('document SPDXID must be SPDXRef-DOCUMENT');
  const packages = d.packages ?? [];
  const files = d.files ?? [];
  const rels = d.relationships ?? [];
  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  for (const e of [...packages, ...files]) {
    if (ids.has(e.SPDXID)) problems.push(`duplicate SPDXID ${e.SPDXID}`);
    ids.add(e.SPDXID);
  }
  for (const r of rels) for (const id of [r.spdxElementId, r.relatedSpdxElement]) if (!ids.has(id)) problems.push(`relationship names unknown element ${id}`);
  if (!rels.some((r) => r.spdxElementId === 'SPDXRef-DOCUMENT' && r.relationshipType === 'DESCRIBES' && ids.has(r.relatedSpdxElement))) problems.push('no SPDXRef-DOCUMENT DESCRIBES relationship');
  const byId = new Map(files.map((f) => [f.SPDXID, f]));
  for (const f of files) {
    const algs = f.checksums.map((c) => c.algorithm);
    if (!algs.includes('SHA1')) problems.push(`file ${f.fileName}: no SHA1 checksum`);
    if (!algs.includes('SHA256')) problems.push(`file ${f.fileName}: no SHA256 checksum`);
    if (!f.fileName.startsWith('./')) problems.push(`file ${f.fileName}: name is not relative (./…)`);
  }
  for (const p of packages) {
    const own = [...new Set([...(p.hasFiles ?? []), ...rels.filter((r) => r.spdxElementId === p.SPDXID && r.relationshipType === 'CONTAINS' && byId.has(r.relatedSpdxElement)).map((r) => r.relatedSpdxElement)])];
    if (p.filesAnalyzed === false) {
      if (own.length) problems.push(`package ${p.SPDXID}: filesAnalyzed is false but it has ${own.length} file(s)`);
      if (p.packageVerificationCode) problems.push(`package ${p.SPDXID}: packageVerificationCode with filesAnalyzed false`);
      continue;
    }
    // filesAnalyzed true, or omitted (defaults to true)
    if (!p.packageVerificationCode) { problems.push(`package ${p.SPDXID}: filesAnalyzed without packageVerificationCode`); continue; }
    const sha1s = own.map((id) => byId.get(id)!.checksums.find((c) => c.algorithm === 'SHA1')?.checksumValue ?? '').map((h) => h.toLowerCase()).sort();
    const expected = createHash('sha1').update(sha1s.join('')).digest('hex');
    if (p.packageVerificationCode.packageVerificationCodeValue !== expected) problems.push(`package ${p.SPDXID}: packageVerificationCode ${p.packageVerificationCode.packageVerificationCodeValue} is not ${expected}`);
  }
  if (opts.sourceDateEpoch !== undefined) {
    const want = new Date(Number(opts.sourceDateEpoch) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (d.creationInfo?.created !== want) problems.push(`created is ${String(d.creationInfo?.created)}, not SOURCE_DATE_EPOCH (${want})`);
  }
  return problems;
}
