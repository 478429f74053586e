import { CtError } from '../core/errors.js';
import type { CiContext } from './ci-context.js';

/** SLSA provenance v1 predicate (https://slsa.dev/spec/v1.0/provenance). */
export interface ResourceDescriptor {
  uri?: string;
  digest?: Record<string, string>;
  name?: string;
  annotations?: Record<string, unknown>;
}

export interface SlsaProvenanceV1 {
  buildDefinition: {
    buildType: string;
    externalParameters: Record<string, unknown>;
    internalParameters?: Record<string, unknown>;
    resolvedDependencies?: ResourceDescriptor[];
  };
  runDetails: {
    builder: { id: string; version?: Record<string, string> };
    metadata?: { invocationId?: string; startedOn?: string; finishedOn?: string };
    byproducts?: ResourceDescriptor[];
  };
}

export interface SlsaOptions {
  /** Time the build finished (RFC 3339); default: SOURCE_DATE_EPOCH, else now. */
  finishedOn?: string;
  startedOn?: string;
  /** What was built, recorded as an external parameter (the bundle's name and version). */
  artifact?: { name: string; version: string };
  env?: NodeJS.ProcessEnv;
  now?: Date;
}

/** RFC 3339 UTC without fractions: what SLSA consumers parse most reliably. */
export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** SOURCE_DATE_EPOCH as a date, when set (reproducible builds); a bad value is a usage error. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): Date | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d{1,12}$/.test(v)) throw new CtError('USAGE', `SOURCE_DATE_EPOCH=${JSON.stringify(v.slice(0, 40))} is not a whole number of seconds`, {});
  return new Date(Number(v) * 1000);
}

/**
 * Builds the predicate from a CI context. The source repository and commit are the resolved
 * dependency (what a verifier compares with the expected repository), the builder id names the
 * workflow or runner, and the run is identified by its invocation URL.
 */
export function slsaProvenance(ctx: CiContext, opts: SlsaOptions = {}): SlsaProvenanceV1 {
  const finished = opts.finishedOn ?? rfc3339(sourceDateEpoch(opts.env) ?? opts.now ?? new Date());
  const started = opts.startedOn ?? ctx.startedOn;
  const deps: ResourceDescriptor[] = [];
  if (ctx.source) deps.push({ uri: ctx.source.uri, ...(ctx.source.commit ? { digest: { gitCommit: ctx.source.commit } } : {}) });
  const external = { ...ctx.externalParameters, ...(opts.artifact ? { artifact: opts.artifact } : {}) };
  const metadata: { invocationId?: string; startedOn?: string; finishedOn?: string } = {};
  if (ctx.invocationId) metadata.invocationId = ctx.invocationId;
  if (started) metadata.startedOn = started;
  metadata.finishedOn = finished;
  return {
    buildDefinition: {
      buildType: ctx.buildType,
      externalParameters: external,
      internalParameters: ctx.internalParameters,
      resolvedDependencies: deps,
    },
    runDetails: { builder: { id: ctx.builderId }, metadata },
  };
}
