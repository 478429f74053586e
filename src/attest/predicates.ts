import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { CtError, asIoError } from '../core/errors.js';
import { checkOciLayout } from '../bundle/check-layout.js';
import type { CtpArchive } from '../bundle/archive.js';
import { buildStatement, ctpSubjects, PREDICATE_SLSA_PROVENANCE_V1, PREDICATE_SPDX_DOCUMENT, type Statement } from './statement.js';
import { ciContext, type OidcClaims } from './ci-context.js';
import { slsaProvenance } from './slsa.js';
import { spdxForImage } from './spdx.js';

export type AttestationKind = 'slsa' | 'spdx' | 'custom';

export interface CustomPredicate {
  predicateType: string;
  predicate: Record<string, unknown>;
}

/** An absolute URI with a scheme (in-toto requires predicateType to be a TypeURI). */
export function assertPredicateType(t: string): void {
  let ok = false;
  try {
    ok = /^[a-z][a-z0-9+.-]*:/i.test(t) && new URL(t).protocol.length > 1;
  } catch {
    ok = false;
  }
  if (!ok) throw new CtError('USAGE', `predicate type ${JSON.stringify(t.slice(0, 200))} is not an absolute URI`, { predicateType: t.slice(0, 200) });
}

/**
 * A custom predicate from a file: JSON, or YAML (decided by content: JSON is tried first, since
 * every JSON document is also YAML but JSON's errors are clearer). It must be an object.
 */
export async function readCustomPredicate(path: string, predicateType: string): Promise<CustomPredicate> {
  assertPredicateType(predicateType);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw asIoError(e, path);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    try {
      v = parseYaml(text, { maxAliasCount: 100 });
    } catch (e) {
      throw new CtError('JSON_INVALID', `${path}: neither JSON nor YAML (${(e as Error).message.split('\n')[0]})`, { path }, { cause: e });
    }
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new CtError('JSON_INVALID', `${path}: a predicate must be a JSON/YAML object (mapping)`, { path });
  // YAML may carry dates or other non-JSON values; round-trip so the statement is plain JSON.
  return { predicateType, predicate: JSON.parse(JSON.stringify(v)) as Record<string, unknown> };
}

export interface AttestOptions {
  kind: AttestationKind;
  custom?: CustomPredicate;
  env?: NodeJS.ProcessEnv;
  claims?: OidcClaims;
  /** Directory whose git checkout is the source of a local build (default: cwd). */
  sourceDir?: string;
  now?: Date;
}

/**
 * The in-toto statement for a .ctp: subjects are the image digest (named after the bundle),
 * manifest.toml and every security/* file (SPEC §2), and the predicate of the requested kind.
 */
export async function attestCtp(archive: CtpArchive, opts: AttestOptions): Promise<Statement> {
  const image = checkOciLayout(archive);
  const covered = [...archive.entries]
    .filter(([name]) => name === 'manifest.toml' || name.startsWith('security/'))
    .map(([name, e]) => ({ name, sha256: e.sha256 }));
  const subjects = ctpSubjects(archive.manifest.name, image.manifestDigest, covered);
  const env = opts.env ?? process.env;
  switch (opts.kind) {
    case 'slsa': {
      const ctx = await ciContext({ env, claims: opts.claims, dir: opts.sourceDir });
      const predicate = slsaProvenance(ctx, { env, now: opts.now, artifact: { name: archive.manifest.name, version: archive.manifest.version } });
      return buildStatement(subjects, PREDICATE_SLSA_PROVENANCE_V1, predicate);
    }
    case 'spdx':
      return buildStatement(subjects, PREDICATE_SPDX_DOCUMENT, await spdxForImage(archive, image, { env, now: opts.now }));
    case 'custom':
      if (!opts.custom) throw new CtError('USAGE', 'a custom attestation needs --predicate FILE and --predicate-type URI', {});
      return buildStatement(subjects, opts.custom.predicateType, opts.custom.predicate);
  }
}
