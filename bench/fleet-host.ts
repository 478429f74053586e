// A simulated fleet for bench/fleet.bench.ts: one process running many real host agents (the real
// enrolment, signed channel, assignment checks and signed bundle download), whose runner answers
// `running` once the bundle is downloaded instead of starting a container: what is measured is
// the server's fan-out, not runc. Reads its agents from argv as JSON; prints "ready" when all are
// connected; stops them on SIGTERM.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startAgent, type Agent } from '../host/agent/agent.js';
import { collectFacts } from '../host/facts.js';

const [serverUrl, stateRoot, tokensJson] = process.argv.slice(2);
const tokens = JSON.parse(tokensJson) as { name: string; token: string }[];
const facts = await collectFacts();
const agents: Agent[] = [];
// Enrolment in small groups: the server's enrolment is a database write per host.
for (let i = 0; i < tokens.length; i += 10) {
  const group = tokens.slice(i, i + 10);
  agents.push(...(await Promise.all(group.map(({ name, token }) => {
    const stateDir = join(stateRoot, name);
    mkdirSync(stateDir, { recursive: true });
    return startAgent({
      serverUrl, stateDir, name, enrollToken: token, facts: async () => facts, maxBackoffMs: 1000,
      runner: { run: async () => ({ state: 'running' as const }) },
      inventory: async () => [],
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
