// A simulated fleet for bench/fleet.bench.ts: one process running many real host agents (the real
// enrolment, signed channel, assignment checks, the generation saved with fsync at each
// assignment, and the signed bundle download), whose runner answers `running` once the bundle is
// downloaded instead of verifying it and starting a container: what is measured is the server's
// fan-out, not runc, and a real host verifies on its own CPU, not the server's. Like a real host
// after that answer, each reports the container it runs in its inventory (a redeploy of the bundle
// already running leaves it as it was). Reads its agents from argv as JSON; prints "ready" when
// all are connected; stops them on SIGTERM.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, type Agent } from '../host/agent/agent.js';
import { collectFacts } from '../host/facts.js';
import { containerIdFor } from '../src/protocol/container-id.js';
import type { InventoryItem } from '../src/protocol/messages.js';

const [serverUrl, stateRoot, tokensJson] = process.argv.slice(2);
const tokens = JSON.parse(tokensJson) as { name: string; token: string }[];
const facts = await collectFacts();
const agents: Agent[] = [];
// Enrolment in small groups: the server's enrolment is a database write per host.
for (let i = 0; i < tokens.length; i += 10) {
  const group = tokens.slice(i, i + 10);
  agents.push(...(await Promise.all(group.map(({ name, token }) => {
    const stateDir = join(stateRoot, name);
    let runs: InventoryItem | undefined;
    mkdirSync(stateDir, { recursive: true });
    return startAgent({
      serverUrl, stateDir, name, enrollToken: token, facts: async () => facts, maxBackoffMs: 1000,
      runner: {
        run: async (a) => {
          runs = { id: containerIdFor(a.environment, a.app), app: a.app, imageDigest: a.imageDigest, state: 'running', health: 'none', restarts: 0 };
          return { state: 'running' as const };
        },
      },
      inventory: async () => (runs ? [runs] : []),
    });
  }))));
}
const deadline = Date.now() + 60_000;
while (!agents.every((a) => a.connected())) {
  if (Date.now() > deadline) throw new Error('agents did not all connect');
  await new Promise((r) => setTimeout(r, 50));
}
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  await Promise.all(agents.map((a) => a.stop()));
  process.exit(0);
});
