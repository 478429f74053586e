import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/core/fs.js';

/**
 * The network settings of whatever made networks in a state directory (`ct host run`, or `ct run`
 * of a bridge bundle), saved beside them: a `ct host` command on that directory tears down,
 * suspends and resumes those networks with the same pool and bridge names. Without them a
 * `ct host rm` of a `ct run`'s container left its namespace, bridge, rules and published port.
 */
export interface NetworkSettings { subnetBase?: string; bridgePrefix?: string; netavarkDir?: string }

const settingsPath = (stateDir: string) => join(stateDir, 'network-settings.json');

export async function saveNetworkSettings(stateDir: string, s: NetworkSettings): Promise<void> {
  await writeFileAtomic(settingsPath(stateDir), `${JSON.stringify(s)}\n`, 0o600);
}

export async function readNetworkSettings(stateDir: string): Promise<NetworkSettings | undefined> {
  return readFile(settingsPath(stateDir), 'utf8').then((t) => JSON.parse(t) as NetworkSettings, () => undefined);
}
