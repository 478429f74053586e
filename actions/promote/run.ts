/**
 * The promote action: open or update the promotion pull / merge request for a signed bundle
 * (src/promote), then report its outcome as outputs and in the job summary. The build action
 * calls the same function when its `promote-environment` input is set.
 */
import { loadPromotionMaterial } from '../../src/promote/material.js';
import { runPromotion } from '../../src/promote/run.js';
import type { PromoteResult } from '../../src/promote/promote.js';
import type { ActionIo } from '../build/io.js';
import { describeError } from '../build/errors.js';
import type { PromoteActionInputs } from './inputs.js';

export async function promoteStep(i: PromoteActionInputs, io: ActionIo): Promise<PromoteResult> {
  if ('token' in i.forge) io.setSecret(i.forge.token);
  if ('app' in i.forge) io.setSecret(i.forge.app.privateKey);
  if (i.registry.password) io.setSecret(i.registry.password);
  const { trust, policies } = await loadPromotionMaterial({ trustStore: i.trustStore, trustedRoot: i.trustedRoot, policies: i.policies });
  const creds = i.registry.username !== undefined ? { credentials: { username: i.registry.username, password: i.registry.password ?? '' } } : {};
  const r = await runPromotion({
    forge: i.forge,
    environment: i.environment, app: i.app, bundle: i.bundle, ...(i.bundleDigest ? { bundleDigest: i.bundleDigest } : {}),
    file: i.file, ...(i.base ? { base: i.base } : {}), ...(i.statusContext ? { statusContext: i.statusContext } : {}),
    candidate: i.ctp, trust, policies,
    ...(i.current ? { current: { path: i.current } } : i.fetchCurrent ? { current: { fetch: { plainHttp: i.registry.plainHttp, allowedAddresses: i.registry.allowedAddresses, ...creds } } } : {}),
  });
  io.setOutput('promotion-outcome', r.outcome);
  io.setOutput('promotion-url', r.change?.url ?? '');
  io.setOutput('promotion-number', r.change ? String(r.change.number) : '');
  io.setOutput('promotion-allowed', String(r.allow));
  io.info(`promotion ${r.outcome}${r.change ? `: ${r.change.url}` : ''} (policy for ${i.environment} ${r.allow ? 'allows' : 'denies'} it)`);
  await io.summary(`### Promotion to ${i.environment}\n\n${r.outcome}${r.change ? ` — [${r.change.url}](${r.change.url})` : ''}; policy ${r.allow ? 'ALLOW' : 'DENY'}\n`);
  return r;
}

export async function run(i: PromoteActionInputs, io: ActionIo): Promise<PromoteResult | undefined> {
  try {
    return await promoteStep(i, io);
  } catch (e) {
    const d = describeError(e);
    io.setFailed(`${d.code}: ${d.message}`);
    return undefined;
  }
}
