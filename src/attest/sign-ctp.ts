/**
 * `ct sign`: attest a .ctp. One in-toto statement per predicate, each naming the image, then
 * `manifest.toml` and every other file outside `oci-layout/` and `attestations/` (SPEC §2), signed
 * into a DSSE envelope (standard PAE), recorded in every given transparency log, and written as
 * `attestations/bundle.json` into the .ctp (replacing an earlier VCS bundle).
 *
 * Without predicates from the caller, two minimal ones are generated: a SLSA v1 provenance of the
 * local build and an SPDX 2.3 document listing the files of the image layers. Rich generators
 * (src/attest/slsa.ts, spdx.ts) can replace them.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { Parser, type ReadEntry } from 'tar';
import { CtError } from '../core/errors.js';
import { openCtp } from '../bundle/read.js';
import { checkOciLayout } from '../bundle/check-layout.js';
import type { CtpArchive } from '../bundle/archive.js';
import { BLOB_PREFIX } from '../bundle/archive.js';
import type { OciImage } from '../bundle/oci.js';
import { rewriteCtp } from '../bundle/write.js';
import { submitToLogs, type LogEndpoint, type SubmitResult } from '../tlog/client.js';
import type { LogEntry } from '../tlog/entry.js';
import { buildStatement, ctpSubjects, PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_SPDX_DOCUMENT, type CoveredFile } from './statement.js';
import { signStatement } from './sign.js';
import { attestationDigest, buildVcsBundle, vcsBundleBytes, type VcsLogEntry } from './vcs-bundle.js';
import type { DsseEnvelope } from './dsse.js';

export interface PredicateInput {
  type: string;
  predicate: unknown;
}

export interface SignCtpOptions {
  key: KeyObject;
  logs: LogEndpoint[];
  predicates?: PredicateInput[];
  /** Output path; default: rewrite the input in place (atomically). */
  out?: string;
  timeoutMs?: number;
  retries?: number;
  now?: Date;
}

export interface SignCtpResult {
  out: string;
  bundleDigest: string;
  attestations: { predicateType: string; digest: string }[];
  logs: { id: string; url: string; ok: boolean; message?: string }[];
}

/**
 * Files a statement about this .ctp names: everything outside oci-layout/ and attestations/
 * (SPEC §2), plus the layout's index.json and oci-layout marker, the two layout files no digest
 * covers (their annotations and platform fields would otherwise be unsigned).
 */
export function coveredFiles(archive: CtpArchive): CoveredFile[] {
  return [...archive.entries.entries()]
    .filter(([n]) => (!n.startsWith('oci-layout/') && !n.startsWith('attestations/')) || n === 'oci-layout/index.json' || n === 'oci-layout/oci-layout')
    .map(([name, e]) => ({ name, sha256: e.sha256 }));
}

/** Minimal SLSA v1 provenance of a local `ct pack` build. */
export function minimalProvenance(archive: CtpArchive, image: OciImage): unknown {
  const m = archive.manifest;
  return {
    buildDefinition: {
      buildType: 'https://cerro-torre.dev/ct-pack/v1',
      externalParameters: { name: m.name, version: m.version },
      internalParameters: {},
      resolvedDependencies: image.layers.map((l) => ({ uri: `oci-layer:${l.digest}`, digest: { sha256: l.digest.slice(7) } })),
    },
    runDetails: {
      builder: { id: `https://cerro-torre.dev/builder/${encodeURIComponent(m.metadata.builder)}` },
      metadata: { invocationId: archive.bundleDigest, startedOn: m.metadata.build_timestamp },
    },
  };
}

const MAX_SPDX_FILES = 20_000;

/** Regular files of one layer (tar, optionally gzip: the parser sniffs), each with its sha256. */
async function layerFiles(archive: CtpArchive, name: string): Promise<{ path: string; sha256: string }[]> {
  const files: { path: string; sha256: string }[] = [];
  await new Promise<void>((resolve, reject) => {
    const parser = new Parser({
      onReadEntry: (entry: ReadEntry) => {
        if (entry.type !== 'File' || files.length >= MAX_SPDX_FILES) {
          entry.resume();
          return;
        }
        const h = createHash('sha256');
        entry.on('data', (d: Buffer) => h.update(d));
        entry.on('end', () => files.push({ path: entry.path.replace(/^\.\//, ''), sha256: h.digest('hex') }));
      },
    });
    parser.on('error', reject);
    parser.on('end', () => resolve());
    const src = archive.openEntry(name);
    src.on('error', reject);
    src.pipe(parser as unknown as NodeJS.WritableStream);
  });
  return files;
}

/** Minimal SPDX 2.3 document: one package for the image, one file per regular file of its layers. */
export async function minimalSpdx(archive: CtpArchive, image: OciImage, created: Date): Promise<unknown> {
  const m = archive.manifest;
  const files: { SPDXID: string; fileName: string; checksums: { algorithm: string; checksumValue: string }[] }[] = [];
  for (const l of image.layers) {
    let list: { path: string; sha256: string }[];
    try {
      list = await layerFiles(archive, `${BLOB_PREFIX}${l.digest.slice(7)}`);
    } catch {
      list = []; // a layer the tar parser cannot read is still listed as a whole below
    }
    files.push({ SPDXID: `SPDXRef-Layer-${l.digest.slice(7, 19)}`, fileName: `layer:${l.digest}`, checksums: [{ algorithm: 'SHA256', checksumValue: l.digest.slice(7) }] });
    for (const f of list) files.push({ SPDXID: `SPDXRef-File-${files.length}`, fileName: f.path, checksums: [{ algorithm: 'SHA256', checksumValue: f.sha256 }] });
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${m.name}-${m.version}`,
    documentNamespace: `https://cerro-torre.dev/spdx/${m.name}/${m.version}/${image.manifestDigest.slice(7)}`,
    creationInfo: { created: created.toISOString().replace(/\.\d{3}Z$/, 'Z'), creators: [`Tool: cerro-torre-${m.metadata.builder}`] },
    packages: [
      {
        SPDXID: 'SPDXRef-Image',
        name: m.name,
        versionInfo: m.version,
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: true,
        checksums: [{ algorithm: 'SHA256', checksumValue: image.manifestDigest.slice(7) }],
      },
    ],
    files,
    relationships: files.map((f) => ({ spdxElementId: 'SPDXRef-Image', relationshipType: 'CONTAINS', relatedSpdxElement: f.SPDXID })),
  };
}

/** Signs every predicate, logs every envelope in every log, and builds the VCS bundle. */
export async function attestCtp(
  archive: CtpArchive,
  opts: SignCtpOptions,
): Promise<{ envelopes: DsseEnvelope[]; predicateTypes: string[]; entries: VcsLogEntry[]; results: SubmitResult[][] }> {
  const image = checkOciLayout(archive);
  const now = opts.now ?? new Date();
  const predicates = opts.predicates ?? [
    { type: PREDICATE_SLSA_PROVENANCE_V1, predicate: minimalProvenance(archive, image) },
    { type: PREDICATE_SPDX_DOCUMENT, predicate: await minimalSpdx(archive, image, now) },
  ];
  const subjects = ctpSubjects(`${archive.manifest.name}:${archive.manifest.version}`, image.manifestDigest, coveredFiles(archive));
  const envelopes = predicates.map((p) => signStatement(buildStatement(subjects, p.type, p.predicate), opts.key));
  const results: SubmitResult[][] = [];
  const entries: VcsLogEntry[] = [];
  for (const [i, env] of envelopes.entries()) {
    const entry = { version: 1, entryType: 'attestation', body: { attestationDigest: attestationDigest(env), subjectDigest: image.manifestDigest, predicateType: predicates[i].type } } as Omit<LogEntry, 'timestamp'>;
    const r = await submitToLogs(entry, opts.logs, { timeoutMs: opts.timeoutMs ?? 20_000, retries: opts.retries ?? 2 });
    results.push(r);
    for (const x of r) if (x.ok) entries.push(x.record);
  }
  return { envelopes, predicateTypes: predicates.map((p) => p.type), entries, results };
}

/**
 * Signs a .ctp and writes it (atomically) with `attestations/bundle.json`. Fails with
 * NETWORK_ERROR when an attestation could be recorded in none of the logs; partial coverage is
 * reported in the result (the verifier's quorum decides).
 */
export async function signCtp(input: string, opts: SignCtpOptions): Promise<SignCtpResult> {
  if (opts.logs.length === 0) throw new CtError('USAGE', 'ct sign needs at least one transparency log (--log)', {});
  const archive = await openCtp(input);
  const { envelopes, predicateTypes, entries, results } = await attestCtp(archive, opts);
  results.forEach((r, i) => {
    if (!r.some((x) => x.ok)) {
      const why = r.map((x) => `${x.id} (${x.url}): ${x.ok ? 'ok' : `${x.code} ${x.message}`}`).join('; ');
      throw new CtError('NETWORK_ERROR', `attestation ${i + 1} could not be recorded in any transparency log: ${why}`, { logs: r.map((x) => ({ id: x.id, ok: x.ok })) });
    }
  });
  // No `metadata`: nothing signs it, and a signed .ctp should hold no byte that can change unnoticed.
  const bundle = buildVcsBundle(envelopes, entries);
  const out = opts.out ?? input;
  const written = await rewriteCtp(input, out, { add: { 'attestations/bundle.json': vcsBundleBytes(bundle) } });
  const logSummary = new Map<string, { id: string; url: string; ok: boolean; message?: string }>();
  for (const r of results.flat()) {
    const prev = logSummary.get(r.id);
    if (!prev || (prev.ok && !r.ok)) logSummary.set(r.id, { id: r.id, url: r.url, ok: r.ok, ...(r.ok ? {} : { message: `${r.code}: ${r.message}` }) });
  }
  return {
    out,
    bundleDigest: written.digest,
    attestations: envelopes.map((e, i) => ({ predicateType: predicateTypes[i], digest: attestationDigest(e) })),
    logs: [...logSummary.values()],
  };
}
