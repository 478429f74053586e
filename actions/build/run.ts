/**
 * The build action: pack a source into a .ctp, attest it (SLSA provenance, SPDX SBOM), sign
 * (keyless with the job's OIDC identity, or with a key), record in the transparency logs, verify
 * what was produced, optionally check a policy, push to a registry, then report (outputs, job
 * summary, commit status). Everything it does is a library call; this file only sequences them.
 * One load-guard-run shape: status `pending` first, the final status in `finally`.
 */
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { openCtp } from '../../src/bundle/read.js';
import { attestCtp } from '../../src/attest/predicates.js';
import { claimsFromToken } from '../../src/attest/ci-context.js';
import type { Statement } from '../../src/attest/statement.js';
import { signCtp } from '../../src/attest/sign-ctp.js';
import { loadTrustStore, trustStoreDigest } from '../../src/trust/store.js';
import type { TrustStore } from '../../src/trust/types.js';
import { keyIdOf } from '../../src/trust/keyid.js';
import type { LogEndpoint } from '../../src/tlog/client.js';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../../src/verify/ctp/verifiers.js';
import { loadTrustedRootFile, publicGoodTrustedRoot, type LoadedTrustedRoot } from '../../src/verify/sigstore/trusted-root.js';
import type { VerificationReport, TrustMaterial } from '../../src/verify/report.js';
import { pushCtp, type PushOptions } from '../../src/oci/push.js';
import { pullImageLayout } from './pull-image.js';
import type { ActionIo } from './io.js';
import { buildSecrets, type BuildInputs } from './inputs.js';
import { githubReporter, type StatusReporter, type StatusState } from './status.js';
import { signKeyless, VCS_LOG_ENTRIES_FILE } from './sign-keyless.js';
import { policyDecision, firstViolation } from './policy-gate.js';
import { buildStatusLine, buildSummary } from './summary.js';
import { describeError, scrub } from './errors.js';
import type { BuildResult } from './result.js';
import { promoteStep } from '../promote/run.js';

export type { BuildResult };
export { describeError, scrub };

const FILE_OF: Record<'slsa' | 'spdx', string> = { slsa: 'provenance.sigstore.json', spdx: 'sbom.sigstore.json' };

async function readJson(path: string, input: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new CtError('IO_ERROR', `input ${input}: ${path}: ${(e as Error).message}`, { input, path }, { cause: e });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new CtError('JSON_INVALID', `input ${input}: ${path}: not JSON (${(e as Error).message})`, { input, path }, { cause: e });
  }
}

function logEndpoints(store: TrustStore, ids: string[]): LogEndpoint[] {
  const logs = store.logs ?? {};
  const chosen = ids.length ? ids : Object.keys(logs).filter((id) => logs[id]?.url).sort();
  return chosen.map((id) => {
    const l = logs[id];
    if (!l) throw new CtError('USAGE', `input logs: ${id} is not a log of the trust store (known: ${Object.keys(logs).join(', ') || 'none'})`, { input: 'logs', log: id });
    if (!l.url) throw new CtError('USAGE', `input logs: log ${id} has no url in the trust store`, { input: 'logs', log: id });
    return { id, url: l.url, publicKey: l.publicKey, operator: l.operator };
  });
}

function registryOptions(i: BuildInputs): PushOptions {
  const creds = i.registry.username !== undefined || i.registry.password !== undefined ? { credentials: { username: i.registry.username ?? '', password: i.registry.password ?? '' } } : {};
  return { ...creds, plainHttp: i.registry.plainHttp, ...(i.registry.allowedAddresses.length ? { allowedAddresses: i.registry.allowedAddresses } : {}) };
}

async function packSource(i: BuildInputs): Promise<{ path: string; name: string; version: string; imageDigest: string }> {
  await mkdir(i.outputDir, { recursive: true });
  const tmp = join(i.outputDir, `.ct-build-${process.pid}.ctp`);
  const s = i.source;
  let pulled: string | undefined;
  if ('image' in s) {
    // A fresh directory of an unguessable name: the output directory may sit in a checkout, where
    // links committed under a predictable name would take the pulled files elsewhere.
    pulled = await mkdtemp(join(i.outputDir, '.ct-pull-'));
    await pullImageLayout(s.image, pulled, registryOptions(i));
  }
  const from = pulled ? { ociLayout: pulled } : 'dir' in s ? { dir: resolve(s.dir) } : 'ociLayout' in s ? { ociLayout: resolve(s.ociLayout) } : { imageTar: resolve((s as { imageTar: string }).imageTar) };
  let packed;
  try {
    packed = await packCtp({ from, out: tmp, name: i.name, version: i.version, securityDir: i.securityDir, includeFrom: i.includeFrom.map((d) => resolve(d)) });
  } finally {
    if (pulled) await rm(pulled, { recursive: true, force: true });
  }
  const safe = (v: string) => v.replace(/[^\w.-]+/g, '_');
  const path = join(i.outputDir, `${safe(packed.manifest.name)}-${safe(packed.manifest.version)}.ctp`);
  await rename(tmp, path);
  return { path, name: packed.manifest.name, version: packed.manifest.version, imageDigest: packed.imageDigest };
}

async function statementsFor(path: string, i: BuildInputs, claims: Record<string, unknown>): Promise<{ file: string; statement: Statement }[]> {
  const kinds: ('slsa' | 'spdx')[] = [...(i.provenance ? ['slsa' as const] : []), ...(i.sbom ? ['spdx' as const] : [])];
  if (kinds.length === 0) throw new CtError('USAGE', 'inputs provenance and sbom are both false: there is nothing to sign', { input: 'provenance' });
  const archive = await openCtp(path);
  const out: { file: string; statement: Statement }[] = [];
  for (const kind of kinds) out.push({ file: FILE_OF[kind], statement: await attestCtp(archive, { kind, env: i.env, claims, sourceDir: i.env.GITHUB_WORKSPACE }) });
  return out;
}

function trustedRootFor(i: BuildInputs): Promise<LoadedTrustedRoot | undefined> | LoadedTrustedRoot | undefined {
  if (i.sigstore.trustedRoot) return loadTrustedRootFile(i.sigstore.trustedRoot);
  if (i.sigstore.instance === 'public-good') return publicGoodTrustedRoot();
  return undefined; // staging: no offline root shipped; verification is reported as skipped
}

function verificationOf(report: VerificationReport): NonNullable<BuildResult['verification']> {
  return { decision: report.decision, code: report.code, ...(report.message ? { message: report.message } : {}), logEntriesVerified: report.logEntriesVerified };
}

async function buildSteps(i: BuildInputs, io: ActionIo, r: BuildResult): Promise<void> {
  const packed = await packSource(i);
  Object.assign(r, { name: packed.name, version: packed.version, bundlePath: packed.path, imageDigest: packed.imageDigest });
  io.info(`packed ${packed.name} ${packed.version} → ${packed.path} (image ${packed.imageDigest})`);

  const store: TrustStore = i.trustStore ? await loadTrustStore(i.trustStore) : { version: 1, keys: {} };
  const logs = i.trustStore ? logEndpoints(store, i.logs) : [];
  let trustedRoot: LoadedTrustedRoot | undefined;
  let report: VerificationReport | undefined;
  const requiredPredicates: string[] = [];

  if (i.signing.mode === 'keyless') {
    let token: string;
    try {
      token = await io.idToken(i.signing.audience);
    } catch (e) {
      throw new CtError('USAGE', `keyless signing needs the job's OIDC token (permissions: id-token: write): ${(e as Error).message}`, { input: 'signing' }, { cause: e });
    }
    io.setSecret(token);
    const statements = await statementsFor(packed.path, i, claimsFromToken(token));
    requiredPredicates.push(...statements.map((s) => s.statement.predicateType));
    const sig = i.sigstore;
    const signed = await signKeyless(packed.path, {
      identityToken: token,
      sigstore: {
        ...(sig.instance === 'staging' ? { staging: true } : {}),
        ...(sig.fulcioURL ? { fulcioURL: sig.fulcioURL } : {}),
        ...(sig.rekorURL ? { rekorURL: sig.rekorURL } : {}),
        ...(sig.tsaURL ? { tsaURL: sig.tsaURL } : {}),
        ...(sig.signingConfig ? { signingConfig: await readJson(sig.signingConfig, 'signing-config') } : {}),
      },
      statements,
      logs,
      logQuorum: i.logQuorum,
    });
    Object.assign(r, { bundleDigest: signed.bundleDigest, identity: signed.identity, attestations: signed.attestations });
    trustedRoot = await trustedRootFor(i);
    if (trustedRoot && signed.identity.issuer && signed.identity.subject) {
      const trust: TrustMaterial = { store, storeDigest: trustStoreDigest(store), trustedRoot, trustedRootDigest: trustedRoot.digest };
      // The verifier counts Rekor and the VCS entries of attestations/vcs-log-entries.json together,
      // by distinct operator: the bundle we publish must meet the quorum we were asked for.
      report = await verifyCtp(packed.path, {
        trust,
        verifiers: defaultVerifiers({ policy: { issuer: signed.identity.issuer, subject: signed.identity.subject }, trustedRoot }),
        requirements: { requiredPredicates, logQuorum: i.logQuorum },
      });
    }
  } else {
    if (!i.trustStore || logs.length === 0) throw new CtError('USAGE', 'input trust-store: signing with a key records in VCS logs: give a trust store with at least one log', { input: 'trust-store' });
    let key;
    try {
      key = createPrivateKey({ key: i.signing.keyPem, format: 'pem', passphrase: i.signing.passphrase });
    } catch (e) {
      throw new CtError('KEY_INVALID', `input key: not a usable PEM private key (${(e as Error).message.split('\n')[0]})`, { input: 'key' }, { cause: e });
    }
    const statements = await statementsFor(packed.path, i, {});
    requiredPredicates.push(...statements.map((s) => s.statement.predicateType));
    const signed = await signCtp(packed.path, { key, logs, predicates: statements.map((s) => ({ type: s.statement.predicateType, predicate: s.statement.predicate })) });
    const keyId = keyIdOf(createPublicKey(key));
    const byLog = signed.logs;
    Object.assign(r, {
      bundleDigest: signed.bundleDigest,
      identity: { keyId },
      attestations: signed.attestations.map((a) => ({ predicateType: a.predicateType, path: 'attestations/bundle.json', digest: a.digest, logs: byLog.map((l) => ({ logId: l.id, ok: l.ok, ...(l.message ? { message: l.message } : {}) })) })),
    });
    report = await verifyCtp(packed.path, { trust: { store, storeDigest: trustStoreDigest(store) }, requirements: { requiredPredicates, logQuorum: i.logQuorum } });
    // signCtp says which logs took the entries; the verified evidence says at which index.
    for (const a of r.attestations) {
      const verified = report.evidence?.attestations.find((e) => e.digest === a.digest);
      for (const l of a.logs) {
        const e = verified?.logEntries.find((x) => x.kind === 'vcs' && x.logId === l.logId);
        if (e) l.logIndex = e.logIndex;
      }
    }
  }

  if (report) {
    r.verification = verificationOf(report);
    // The .ctp verifier does not read the keyless VCS log entries yet (docs/ci.md); they were
    // checked on receipt, so its "ignored" warning is not news to the user.
    r.warnings.push(...report.warnings.filter((w) => !w.startsWith(VCS_LOG_ENTRIES_FILE)));
    if (report.decision === 'REJECT') throw new CtError((report.code ?? 'MALFORMED_BUNDLE') as never, `the signed bundle does not verify: ${report.message ?? report.code}`, { stage: 'verify' });
  } else {
    r.verification = { decision: 'SKIPPED', code: null, message: 'no trusted root for this Sigstore instance (input trusted-root)' };
    r.warnings.push('signed bundle not verified: no trusted root for this Sigstore instance (give trusted-root)');
  }

  if (i.policy) {
    const d = await policyDecision(packed.path, report ?? (await verifyCtp(packed.path, { trust: { store, storeDigest: trustStoreDigest(store) }, mode: 'audit' })), [i.policy], i.environment);
    r.policy = { allow: d.allow, policies: d.policies, ...(d.allow ? {} : { message: firstViolation(d) }) };
    r.warnings.push(...d.warnings.map((w) => `policy ${w.policy}/${w.rule}: ${w.code} ${w.message}`));
    if (!d.allow) throw new CtError('POLICY_VIOLATION', `policy pre-check for environment ${i.environment}: ${firstViolation(d)}`, { stage: 'policy' });
  }

  if (i.push) {
    const pushed = await pushCtp(packed.path, i.push, registryOptions(i));
    r.pushed = { reference: pushed.reference, artifacts: pushed.artifacts.length };
    io.info(`pushed ${pushed.reference} (${pushed.artifacts.length} attestation artifact(s), referrers via ${pushed.referrers})`);
  }
  if (i.promote) {
    if (!r.pushed || !i.trustStore) throw new CtError('USAGE', 'promote-environment needs push (a pinned reference to promote) and trust-store (to verify it for the evidence)', { input: 'promote-environment' });
    const p = i.promote;
    const res = await promoteStep({
      ...p, bundle: r.pushed.reference, ...(r.bundleDigest ? { bundleDigest: r.bundleDigest } : {}), ctp: packed.path, trustStore: i.trustStore,
      ...(i.sigstore.trustedRoot ? { trustedRoot: i.sigstore.trustedRoot } : {}), fetchCurrent: true,
      registry: { plainHttp: i.registry.plainHttp, allowedAddresses: i.registry.allowedAddresses, ...(i.registry.username !== undefined ? { username: i.registry.username } : {}), ...(i.registry.password !== undefined ? { password: i.registry.password } : {}) },
    }, io);
    r.promotion = { outcome: res.outcome, url: res.change?.url, allowed: res.allow };
  }
}

function setOutputs(r: BuildResult, io: ActionIo): void {
  const out: Record<string, string | undefined> = {
    'bundle-path': r.bundlePath,
    'image-digest': r.imageDigest,
    'bundle-digest': r.bundleDigest,
    attestations: JSON.stringify(r.attestations.map((a) => ({ path: a.path, predicateType: a.predicateType, digest: a.digest }))),
    'log-entries': JSON.stringify(r.attestations.flatMap((a) => [
      ...(a.rekorLogIndex !== undefined ? [{ attestation: a.digest, log: 'rekor', logIndex: a.rekorLogIndex }] : []),
      ...a.logs.filter((l) => l.ok).map((l) => ({ attestation: a.digest, log: l.logId, ...(l.logIndex !== undefined ? { logIndex: l.logIndex } : {}) })),
    ])),
    'registry-reference': r.pushed?.reference,
    'promotion-url': r.promotion?.url,
    identity: r.identity?.subject ?? r.identity?.keyId ?? undefined,
    verification: r.verification?.decision,
  };
  for (const [k, v] of Object.entries(out)) if (v !== undefined) io.setOutput(k, v);
}

/** `reporter`: where commit statuses go (default GitHub, when a token is given). */
export async function run(i: BuildInputs, io: ActionIo, reporter: StatusReporter | undefined = githubReporter({ token: i.githubToken ?? '', ctx: i.ctx, sha: i.sha })): Promise<BuildResult> {
  const secrets = buildSecrets(i);
  secrets.forEach((s) => io.setSecret(s));
  const r: BuildResult = { ok: false, signing: i.signing.mode, attestations: [], warnings: [] };
  const status = async (state: StatusState, description: string) => {
    if (!reporter) return;
    const why = await reporter({ state, context: i.statusContext, description: scrub(description, secrets) });
    if (why) r.warnings.push(why);
  };
  await status('pending', 'Cerro Torre: packing, signing and publishing');
  try {
    await buildSteps(i, io, r);
    r.ok = true;
  } catch (e) {
    r.error = describeError(e);
    r.error.message = scrub(r.error.message, secrets);
    if (r.bundlePath === undefined) await rm(join(i.outputDir, `.ct-build-${process.pid}.ctp`), { force: true }).catch(() => undefined);
  } finally {
    await status(r.ok ? 'success' : 'failure', buildStatusLine(r));
    setOutputs(r, io);
    for (const w of r.warnings) io.warning(scrub(w, secrets));
    await io.summary(scrub(buildSummary(r), secrets)).catch((e) => io.warning(`job summary not written: ${(e as Error).message}`));
    if (!r.ok) io.setFailed(`${r.error!.code}: ${r.error!.message}`);
  }
  return r;
}
