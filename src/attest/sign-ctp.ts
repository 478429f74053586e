/**
 * `ct sign`: attest a .ctp. One in-toto statement per predicate, each naming the image, then
 * `manifest.toml` and every other file outside `oci-layout/` and `attestations/` (SPEC §2), signed
 * into a DSSE envelope (standard PAE), recorded in every given transparency log, and written as
 * `attestations/bundle.json` into the .ctp (replacing an earlier VCS bundle).
 *
 * Without predicates from the caller, two are generated: a minimal SLSA v1 provenance of the
 * local build and the SPDX 2.3 SBOM of the image (src/attest/spdx.ts, the same document as
 * `ct attest --type spdx`).
 */
import type { KeyObject } from 'node:crypto';
import { CtError } from '../core/errors.js';
import { openCtp } from '../bundle/read.js';
import { checkOciLayout } from '../bundle/check-layout.js';
import type { CtpArchive } from '../bundle/archive.js';
import type { OciImage } from '../bundle/oci.js';
import { rewriteCtp } from '../bundle/write.js';
import { submitToLogs, type LogEndpoint, type SubmitResult } from '../tlog/client.js';
import type { LogEntry } from '../tlog/entry.js';
import { buildStatement, ctpSubjects, PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_SPDX_DOCUMENT, type CoveredFile } from './statement.js';
import { addSignature, signStatement } from './sign.js';
import { attestationDigest, buildVcsBundle, vcsBundleBytes, type VcsLogEntry } from './vcs-bundle.js';
import type { DsseEnvelope } from './dsse.js';
import { spdxForImage } from './spdx.js';

export interface PredicateInput {
  type: string;
  predicate: unknown;
}

export interface SignCtpOptions {
  key: KeyObject;
  /**
   * Further signers: each adds its signature to every envelope before it is logged (a k-of-n
   * threshold group counts distinct keys, and a later `ct sign` replaces the envelopes).
   */
  alsoKeys?: readonly KeyObject[];
  logs: LogEndpoint[];
  predicates?: PredicateInput[];
  /** Output path; default: rewrite the input in place (atomically). */
  out?: string;
  /** false: a file that appeared at `out` meanwhile is refused (IO_ERROR), not replaced (default true). */
  replace?: boolean;
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

/** Signs every predicate, logs every envelope in every log, and builds the VCS bundle. */
export async function attestCtp(
  archive: CtpArchive,
  opts: SignCtpOptions,
): Promise<{ envelopes: DsseEnvelope[]; predicateTypes: string[]; entries: VcsLogEntry[]; results: SubmitResult[][] }> {
  const image = checkOciLayout(archive);
  const now = opts.now ?? new Date();
  const predicates = opts.predicates ?? [
    { type: PREDICATE_SLSA_PROVENANCE_V1, predicate: minimalProvenance(archive, image) },
    { type: PREDICATE_SPDX_DOCUMENT, predicate: await spdxForImage(archive, image, { now }) },
  ];
  const subjects = ctpSubjects(`${archive.manifest.name}:${archive.manifest.version}`, image.manifestDigest, coveredFiles(archive));
  const envelopes = predicates.map((p) => (opts.alsoKeys ?? []).reduce((env, k) => addSignature(env, k), signStatement(buildStatement(subjects, p.type, p.predicate), opts.key)));
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
  const written = await rewriteCtp(input, out, { add: { 'attestations/bundle.json': vcsBundleBytes(bundle) }, replace: opts.replace });
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
