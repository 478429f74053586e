/**
 * The deploy VSA of one deployment: signed once with the deployer key, recorded, checked against
 * the trust store (a key that is not a `deployers` key there makes a VSA nobody accepts: said
 * loudly), and published with the bundle in its registry (referrer, or the tag fallback). A
 * registry that refuses the push does not lose the VSA: it stays recorded and exported by the API.
 */
import { createPublicKey } from 'node:crypto';
import { isOwnDeployVsa, signDeployVsa, verifyDeployVsa } from '../../src/attest/vsa.js';
import { CtError } from '../../src/core/errors.js';
import { attachVsa } from '../../src/oci/vsa-referrer.js';
import type { VsaLabels } from '../../src/oci/vsa-index.js';
import type { TrustMaterial } from '../../src/verify/report.js';
import type { ServerContext } from '../context.js';
import { recordAudit } from '../audit.js';
import type { DeployerKey } from './deployer-key.js';
import type { VsaRow, VsaStore } from './vsa-store.js';

export interface SignableDeployment {
  id: string;
  environment: string;
  app: string;
  reference: string;
  image_digest: string | null;
  bundle_digest: string | null;
}

export async function ensureVsa(ctx: ServerContext, deps: { key: DeployerKey; vsas: VsaStore; trust: () => TrustMaterial | undefined; policyDigest?: string }, d: SignableDeployment): Promise<VsaRow> {
  const existing = await deps.vsas.forDeployment(d.id);
  if (existing) return existing;
  if (!d.image_digest || !d.bundle_digest) throw new CtError('VSA_INVALID', `deployment ${d.id} has no image or bundle digest recorded`, {});
  const now = new Date();
  const bytes = signDeployVsa({
    verifierId: ctx.config.publicUrl ?? `urn:cerro-torre:deploy-server:${deps.key.keyId}`,
    environment: d.environment, imageDigest: d.image_digest, bundleDigest: d.bundle_digest, reference: d.reference,
    ...(deps.policyDigest ? { policyDigest: deps.policyDigest } : {}), deploymentId: d.id, time: now,
  }, deps.key.privateKey);
  const labels = { environment: d.environment, verifier: deps.key.keyId, created: now };
  const row = await deps.vsas.record({ deployment_id: d.id, environment: d.environment, app: d.app, image_digest: d.image_digest, bundle_digest: d.bundle_digest, envelope: bytes.toString('utf8') });
  const trust = deps.trust();
  let accepted: string | null = null;
  try {
    if (trust) verifyDeployVsa(bytes, { store: trust.store, imageDigest: d.image_digest, bundleDigest: d.bundle_digest, environment: d.environment });
  } catch (e) {
    accepted = e instanceof CtError ? e.code : 'VSA_INVALID';
    ctx.log.error({ keyId: deps.key.keyId, code: accepted }, 'the deploy VSA does not verify with this server\'s trust store: add the deployer key to the role deployers (GET /api/v1/deployer)');
  }
  await recordAudit(ctx.db, 'vsa.signed', d.id, { deployment: d.id, environment: d.environment, app: d.app, imageDigest: d.image_digest, bundleDigest: d.bundle_digest, keyId: deps.key.keyId, verifies: accepted === null, ...(accepted ? { code: accepted } : {}) });
  await publish(ctx, deps.vsas, d, bytes, labels, deps.key);
  return row;
}

async function publish(ctx: ServerContext, vsas: VsaStore, d: SignableDeployment, bytes: Buffer, labels: VsaLabels, key: DeployerKey): Promise<void> {
  const host = d.reference.split('/')[0];
  // Only VSAs this server signed, for this image and environment, are ever deleted as superseded.
  const own = { keyId: key.keyId, publicKey: createPublicKey(key.privateKey) };
  const isOurs = (envelope: Buffer) => isOwnDeployVsa(envelope, own, { imageDigest: d.image_digest!, environment: d.environment });
  try {
    const r = await attachVsa(d.reference, bytes, labels, {
      allowedRegistries: ctx.config.registries.allow,
      allowedAddresses: ctx.config.registries.allowedAddresses,
      plainHttp: ctx.config.registries.insecure?.includes(host) ?? false,
    }, { isOurs });
    await vsas.markPublished(d.id, `${d.reference.split('@')[0]}@${r.digest} (${r.via === 'api' ? 'referrer' : 'tag index'})`);
    if (r.unlisted) ctx.log.warn({ deployment: d.id, code: r.unlisted }, 'the image\'s referrers could not be listed after publishing its deploy VSA: older VSAs of this environment were not looked for nor deleted (docs/registry.md)');
    if (r.notDeleted?.length) ctx.log.warn({ deployment: d.id, notDeleted: r.notDeleted }, 'the registry did not delete the superseded deploy VSA of this environment: it stays listed among the image\'s referrers (docs/promotion.md)');
    if (r.superseded) ctx.log.info({ deployment: d.id }, 'a later deploy VSA of this environment is already in the image\'s tag index: this one was pushed but not listed there (it stays exported by /api/v1/vsas)');
  } catch (e) {
    ctx.log.warn({ deployment: d.id, err: (e as Error).message.slice(0, 300) }, 'the deploy VSA could not be published to the registry: it stays recorded and exported by /api/v1/vsas');
  }
}
