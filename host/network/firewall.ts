import { runTool } from '../runtime/tools.js';
import { CtError } from '../../src/core/errors.js';

/**
 * The host's firewall as host/network sees it: our egress rules live in the mangle table
 * (egress.ts), our published ports in the nat and filter tables (ports.ts). A change to either is computed
 * from ONE `iptables-save` of both tables and written by ONE `iptables-restore --noflush` that
 * carries a section per table: the start of a container with ports used to cost four process
 * spawns here (a save and a restore per table), about 40 ms of the ~100 ms budget above a bare
 * `netavark setup` + `runc run` (bench/network-start.bench.ts).
 */
export interface SavedTables {
  mangle: string[];
  nat: string[];
  filter: string[];
}

const TABLES = ['mangle', 'nat', 'filter'] as const;

/** The lines of the mangle, nat and filter tables now (one `iptables-save`). */
export async function saveTables(): Promise<SavedTables> {
  const r = await runTool('iptables-save', [], { timeoutMs: 30_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'iptables-save (iptables) is not installed', { tool: 'iptables-save' });
  if (r.code !== 0) throw new CtError('NETWORK_SETUP_FAILED', `iptables-save: ${r.overflowed ? 'printed more than the host reads of a tool and was killed' : r.timedOut ? 'timed out' : r.stderr.trim().slice(0, 300)}`, {});
  const out: SavedTables = { mangle: [], nat: [], filter: [] };
  let table: string[] | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('*')) table = (TABLES as readonly string[]).includes(line.slice(1)) ? out[line.slice(1) as (typeof TABLES)[number]] : undefined;
    else if (table && line !== 'COMMIT') table.push(line);
  }
  return out;
}

/** Writes the sections (each the body of its table, without `*table` and COMMIT) in one iptables-restore; empty ones are left out. */
export async function restoreTables(sections: Partial<Record<(typeof TABLES)[number], readonly string[]>>): Promise<void> {
  const parts: string[] = [];
  for (const table of TABLES) {
    const lines = sections[table];
    if (lines && lines.length > 0) parts.push(`*${table}`, ...lines, 'COMMIT');
  }
  if (parts.length === 0) return;
  const r = await runTool('iptables-restore', ['-w', '10', '--noflush'], { input: `${parts.join('\n')}\n`, timeoutMs: 30_000 });
  if (r.missing) throw new CtError('HOST_TOOL_MISSING', 'iptables-restore (iptables) is not installed', { tool: 'iptables-restore' });
  if (r.code !== 0) throw new CtError('NETWORK_SETUP_FAILED', `iptables-restore: ${r.stderr.trim().slice(0, 300)}`, {});
}
