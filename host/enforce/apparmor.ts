import { CtError } from '../../src/core/errors.js';
import { checkBundleAppArmor, generateAppArmorProfile, lintAppArmor, profileNameFor } from '../../src/profiles/apparmor/index.js';
import type { HostFacts } from '../facts.js';
import { runTool } from '../runtime/tools.js';
import type { AppArmorPlan, EnforceInput } from './types.js';

/**
 * The AppArmor profile for a container: the bundle's (checked, renamed by the host) or one
 * generated from the manifest; linted with apparmor_parser when installed. It goes into the OCI
 * config only where the kernel enforces AppArmor; elsewhere the plan says why it is not applied.
 */
export async function planAppArmor(input: EnforceInput, facts: HostFacts): Promise<AppArmorPlan> {
  const name = profileNameFor(input.app.name, input.app.imageDigest);
  let text: string;
  let source: AppArmorPlan['source'];
  if (input.profiles?.apparmor !== undefined) {
    text = checkBundleAppArmor(input.profiles.apparmor, 'security/apparmor', name).text;
    source = 'bundle';
  } else {
    text = generateAppArmorProfile(input.app, { capabilities: input.runtime?.capabilities, network: input.runtime?.network }).text;
    source = 'generated';
  }
  // Bundle text is linted everywhere. Our own template is tested in CI and, where AppArmor
  // enforces, compiled again when loaded: linting it on every start would only cost two processes.
  if (facts.apparmor.parser && (source === 'bundle' || facts.apparmor.enforcing)) {
    const lint = await lintAppArmor(text);
    if (lint.linted && !lint.ok) {
      throw new CtError('PROFILE_INVALID', `security/apparmor: apparmor_parser rejects the profile: ${lint.diagnostics}`, { diagnostics: lint.diagnostics });
    }
    if (lint.linted && (lint.names.length !== 1 || lint.names[0] !== name)) {
      throw new CtError('PROFILE_INVALID', `security/apparmor: profile must define exactly ${name}, found ${lint.names.join(', ')}`, { names: lint.names });
    }
  }
  return facts.apparmor.enforcing
    ? { name, text, source, applied: true }
    : { name, text, source, applied: false, reason: facts.apparmor.reason ?? 'AppArmor not enforcing' };
}

/** Loads (or replaces) the profile in the kernel. Only called where facts say AppArmor enforces. */
export async function loadAppArmor(plan: AppArmorPlan): Promise<void> {
  const r = await runTool('apparmor_parser', ['-r', '-K', '-q'], { input: plan.text, timeoutMs: 30000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'apparmor_parser is not installed', { tool: 'apparmor_parser' });
  if (r.code !== 0) throw new CtError('HOST_CANNOT_ENFORCE', `apparmor_parser could not load ${plan.name}: ${r.stderr.trim()}`, { profile: plan.name });
}
