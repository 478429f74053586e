/**
 * A deployment's verified evidence in the shape an agent (or a reviewer) reads: who signed what,
 * which logs hold it, which files the signatures cover. Predicates are summarised, not copied:
 * an SBOM can be megabytes.
 */
import type { Evidence } from '../verify/evidence.js';
import { untrusted } from './untrusted.js';

const str = (v: unknown) => (typeof v === 'string' ? v : undefined);

function builderOf(predicate: unknown): string | undefined {
  const p = predicate as { runDetails?: { builder?: { id?: unknown } }; builder?: { id?: unknown } } | null;
  return str(p?.runDetails?.builder?.id) ?? str(p?.builder?.id);
}

/** A certificate's claims name what its owner chose (a branch, a workflow, a repository): data, as its subject is. */
function claimsView(claims: Record<string, string> | undefined) {
  return Object.fromEntries(Object.entries(claims ?? {}).slice(0, 32).map(([k, v]) => [k, untrusted('certificate claim', v, 1024)]));
}

/**
 * The bundle's files by name: its author named them (a file may be called anything), so each name
 * is data; a list, since a name cannot be wrapped as an object key.
 */
function filesView(files: Record<string, string> | undefined) {
  return Object.entries(files && typeof files === 'object' ? files : {}).slice(0, 1000).map(([path, digest]) => ({ path: untrusted('bundle file name', path, 1024), digest }));
}

export function summariseEvidence(e: Evidence | null | undefined) {
  if (!e || typeof e !== 'object' || !Array.isArray(e.attestations)) return null;
  return {
    imageDigest: e.imageDigest,
    bundleDigest: e.bundleDigest ?? null,
    fetchedReference: e.fetchedReference ?? null,
    coveredFiles: filesView(e.coveredFiles),
    attestations: e.attestations.slice(0, 50).map((a) => ({
      // Signed, but chosen by whoever signed: a predicate type and a builder id are free text.
      predicateType: untrusted('predicate type', a.predicateType, 1024),
      source: a.source,
      digest: a.digest,
      builder: untrusted('SLSA builder', builderOf(a.predicate), 1024),
      signers: a.signers.map((s) => (s.kind === 'key' ? { kind: s.kind, keyId: s.keyId ?? null, roles: s.roles ?? [] } : { kind: s.kind, issuer: s.issuer ?? null, subject: untrusted('certificate subject', s.subject, 1024), claims: claimsView(s.claims) })),
      logEntries: a.logEntries.slice(0, 20).map((l) => ({ logId: l.logId, operator: l.operator, logIndex: l.logIndex })),
      logOperators: a.logOperators,
    })),
  };
}
