import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { CONTAINER_TEMPLATE_CIL, checkBundleSelinux, generateSelinuxPolicy } from '../../src/profiles/selinux/index.js';
import type { HostFacts } from '../facts.js';
import { runTool } from '../runtime/tools.js';
import type { EnforceInput } from './types.js';

export interface SelinuxPlan {
  block: string;
  text: string;
  source: 'bundle' | 'generated';
  /** Labels for the OCI config; set only where the kernel enforces SELinux. */
  applied: boolean;
  processLabel: string;
  mountLabel: string;
  reason?: string;
}

/**
 * The SELinux policy of a container, treated like AppArmor: the bundle's security/selinux/policy.cil
 * (checked: one block named for the app, inheriting the container template, no escape hatches) or
 * one generated from the manifest (udica style). Its labels go into the OCI config only where the
 * kernel enforces SELinux; a policy that requires SELinux on a host without it was refused before
 * (HOST_SELINUX_UNAVAILABLE, requirements.ts).
 */
export function planSelinux(input: EnforceInput, facts: HostFacts): SelinuxPlan {
  const fromBundle = input.profiles?.selinux !== undefined;
  const generated = generateSelinuxPolicy(input.app.name, input.runtime ?? {});
  const text = fromBundle ? input.profiles!.selinux! : generated.text;
  const { block } = fromBundle ? checkBundleSelinux(text, input.app.name) : { block: generated.block };
  const labels = { processLabel: `system_u:system_r:${block}.process:s0`, mountLabel: 'system_u:object_r:container_file_t:s0' };
  return facts.selinux?.enforcing
    ? { block, text, source: fromBundle ? 'bundle' : 'generated', applied: true, ...labels }
    : { block, text, source: fromBundle ? 'bundle' : 'generated', applied: false, ...labels, reason: facts.selinux?.reason ?? 'SELinux not enforcing' };
}

/** Loads the template and the app's policy with semodule. Only called where facts say SELinux enforces. */
export async function loadSelinux(plan: SelinuxPlan): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ct-selinux-'));
  try {
    await writeFile(join(dir, 'ct_container.cil'), CONTAINER_TEMPLATE_CIL);
    await writeFile(join(dir, `${plan.block}.cil`), plan.text);
    const r = await runTool('semodule', ['-i', join(dir, 'ct_container.cil'), join(dir, `${plan.block}.cil`)], { timeoutMs: 120_000 });
    if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'semodule is not installed', { tool: 'semodule' });
    if (r.code !== 0) throw new CtError('HOST_CANNOT_ENFORCE', `semodule could not load ${plan.block}: ${r.stderr.trim().slice(0, 500)}`, { block: plan.block });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
