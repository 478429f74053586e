/**
 * Promotion as one library call (the CLI, both CI actions, the deploy server and the MCP tool
 * use it): pin a bundle for an app of an environment in a desired-state file, on the branch
 * `ct-promote/<environment>/<app>`, and open or update that branch's one pull / merge request
 * with the evidence, then post a commit status on its head saying whether the policy allows it.
 *
 * Someone else's edit is never overwritten: every write names the version that was read and the
 * forge refuses it if the file changed meanwhile; the edit is then made again on what is there
 * now (a rebase of our one-line change), a bounded number of times, else PROMOTE_CONFLICT.
 * Idempotent: the same bundle again writes nothing, updates nothing and posts nothing.
 */
import { CtError } from '../core/errors.js';
import { currentPin, setBundle, type BundlePin } from './desired-edit.js';
import { promotionTitle, renderPromotionBody } from './body.js';
import type { PromotionEvidence } from './evidence.js';
import type { ChangeRequest, CommitStatus, Forge } from './forge.js';
import { NAME } from '../core/name.js';

export interface PromoteInput extends BundlePin {
  /** Path of the desired-state file in the repository. */
  file: string;
  /** Branch the change request targets (default: the repository's default branch). */
  base?: string;
  /** Commit-status context (default `cerro-torre/promote/<environment>`). */
  statusContext?: string;
  targetUrl?: string;
}

export type PromoteOutcome = 'opened' | 'updated' | 'unchanged' | 'up-to-date';

export interface PromoteResult {
  outcome: PromoteOutcome;
  branch: string;
  base: string;
  change?: { number: number; url: string; headSha: string };
  previous?: { bundle: string; bundleDigest?: string };
  allow: boolean;
  /** How many times the edit was made again because the file changed meanwhile. */
  rebases: number;
}

/** Computes the evidence once the pin that runs now is known (it is what the differences are taken against). */
export type EvidenceFor = (previous: { bundle: string; bundleDigest?: string } | undefined) => Promise<PromotionEvidence>;

const MAX_REBASES = 3;
const FILE = /^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[\w./-]{1,512}$/;

export function promotionBranch(pin: Pick<BundlePin, 'environment' | 'app'>): string {
  return `ct-promote/${pin.environment}/${pin.app}`;
}

function check(input: PromoteInput): void {
  if (!NAME.test(input.environment)) throw new CtError('USAGE', 'environment: lowercase letters, digits, . _ - (at most 63)', {});
  if (!NAME.test(input.app)) throw new CtError('USAGE', 'app: lowercase letters, digits, . _ - (at most 63)', {});
  if (!FILE.test(input.file)) throw new CtError('USAGE', `file ${JSON.stringify(input.file.slice(0, 200))} must be a relative path inside the repository`, {});
}

/**
 * Whether the branch is exactly what a merged or closed change left (nothing pushed since) and no
 * change from it is open, on any base: only then may it be started over without dropping anyone's
 * work. A branch under someone's open change, or holding commits no change carried (a human's
 * push, a promotion cut short before its change was opened), is reused as it is.
 */
async function outlivedItsChange(forge: Forge, branch: string, head: string): Promise<boolean> {
  const ended = await forge.endedChangeHeads(branch);
  return !ended.open && ended.heads.includes(head);
}

export async function promote(input: PromoteInput, forge: Forge, evidenceFor: EvidenceFor): Promise<PromoteResult> {
  check(input);
  const base = input.base ?? (await forge.defaultBranch());
  const branch = promotionBranch(input);
  const onBase = await forge.readFile(input.file, base);
  if (!onBase) throw new CtError('PROMOTE_APP_MISSING', `${input.file} does not exist on ${base}`, { file: input.file, base });
  // Parse (and refuse) before anything is written; also what runs now, per the desired state.
  const baseEdit = setBundle(onBase.text, input, input.file);
  const previous = currentPin(onBase.text, input.environment, input.app, input.file);
  const existingHead = await forge.branchHead(branch);
  const existing = existingHead ? await forge.findChange(branch, base) : undefined;
  const evidence = await evidenceFor(previous);
  const allow = evidence.policy.allow;
  if (!baseEdit.changed && !existing) return { outcome: 'up-to-date', branch, base, previous, allow, rebases: 0 };

  let rebases = 0;
  let head = existingHead;
  let wrote = false;
  if (existingHead && !existing && (await outlivedItsChange(forge, branch, existingHead))) {
    // The branch outlived its change (merged, squash-merged or closed): reusing it would carry
    // that old history, and with a squash merge its edits again. It starts over from the base.
    const baseHead = await forge.branchHead(base);
    if (!baseHead) throw new CtError('PROMOTE_FORGE_ERROR', `base branch ${base} does not exist`, { base });
    if (baseHead !== existingHead) await forge.resetBranch(branch, baseHead);
    head = baseHead;
  }
  for (;;) {
    if (!head) {
      const baseHead = await forge.branchHead(base);
      if (!baseHead) throw new CtError('PROMOTE_FORGE_ERROR', `base branch ${base} does not exist`, { base });
      if (!(await forge.createBranch(branch, baseHead))) {
        head = await forge.branchHead(branch);
        continue;
      }
      head = baseHead;
    }
    const onBranch = await forge.readFile(input.file, branch);
    if (!onBranch) throw new CtError('PROMOTE_CONFLICT', `${input.file} was removed on ${branch}: refusing to recreate it`, { file: input.file, branch });
    const edit = setBundle(onBranch.text, input, input.file);
    if (!edit.changed) break;
    const w = await forge.writeFile(input.file, branch, edit.text, onBranch.version, `Promote ${input.app} to ${input.environment}: ${input.bundle.split('@')[1]}`);
    if (w.ok) {
      head = w.commit;
      wrote = true;
      break;
    }
    if (++rebases > MAX_REBASES) throw new CtError('PROMOTE_CONFLICT', `${input.file} on ${branch} kept changing while it was edited (${MAX_REBASES} attempts): nothing was overwritten; run again`, { file: input.file, branch });
  }

  const title = promotionTitle(input, evidence);
  const body = renderPromotionBody(input, previous, evidence, input.file);
  let change: ChangeRequest;
  let outcome: PromoteOutcome;
  let found = existing;
  let opened: ChangeRequest | undefined;
  if (!found) {
    try {
      opened = await forge.openChange({ branch, base, title, body });
    } catch (e) {
      // Another promotion of this app opened it since we looked (GitHub 422, GitLab 409): it is
      // the one change of this branch, ours to update as below.
      found = await forge.findChange(branch, base);
      if (!found) throw e;
    }
  }
  if (opened) {
    change = opened;
    outcome = 'opened';
  } else if (found!.body !== body || found!.title !== title) {
    // The body describes the branch's head: when another promotion's commit went on top of ours
    // (a race for the same app), that one's body stays, not ours with evidence of another bundle.
    const tip = await forge.branchHead(branch);
    if (tip && head && tip !== head) {
      change = found!;
      outcome = wrote ? 'updated' : 'unchanged';
    } else {
      change = await forge.updateChange(found!.number, { title, body });
      outcome = 'updated';
    }
  } else {
    change = found!;
    outcome = wrote ? 'updated' : 'unchanged';
  }
  const headSha = wrote && head ? head : change.headSha;
  const status: CommitStatus = {
    state: allow ? 'success' : 'failure',
    context: input.statusContext ?? `cerro-torre/promote/${input.environment}`,
    description: (allow ? `policy for ${input.environment} allows this bundle` : `policy for ${input.environment} denies: ${evidence.policy.firstViolation ?? 'see the pull request'}`).slice(0, 140),
    ...(input.targetUrl ? { targetUrl: input.targetUrl } : {}),
  };
  const seen = await forge.getStatus(headSha, status.context);
  if (!seen || seen.state !== status.state || seen.description !== status.description) {
    await forge.setStatus(headSha, status);
    if (outcome === 'unchanged') outcome = 'updated';
  }
  return { outcome, branch, base, change: { number: change.number, url: change.url, headSha }, previous, allow, rebases };
}
