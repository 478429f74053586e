import { DOCKER_NETWORK_RULES, renderBaseline } from './template.js';
import { profileNameFor } from './names.js';

/** The parts of the manifest's `[runtime]` table the AppArmor profile depends on. */
export interface AppArmorRuntimeAsk {
  capabilities?: readonly string[];
  network?: string;
}

const CAP = /^CAP_([A-Z_]{2,32})$/;

/**
 * A profile for one app on the docker-default baseline, named by the host. Differences from
 * docker-default, each narrowing it: only the capabilities the container is granted (docker-default
 * allows every capability and relies on the bounding set alone), and no inet sockets when the app
 * asked for no network.
 */
export function generateAppArmorProfile(app: { name: string; imageDigest: string }, ask: AppArmorRuntimeAsk = {}): { name: string; text: string } {
  const name = profileNameFor(app.name, app.imageDigest);
  const capabilityRules: string[] = [];
  for (const c of [...new Set(ask.capabilities ?? [])].sort()) {
    const m = CAP.exec(c);
    // Names were validated with the manifest; anything else is dropped rather than written into the text.
    if (m) capabilityRules.push(`capability ${m[1].toLowerCase()},`);
  }
  const networkRules = ask.network === 'none'
    ? ['network unix,', 'network netlink,', 'deny network inet,', 'deny network inet6,', 'deny network alg,']
    : DOCKER_NETWORK_RULES;
  return { name, text: renderBaseline({ name, capabilityRules, networkRules }) };
}
