// The runtime host of bench/webhook.bench.ts, in its own process as on a real host: the real agent
// and runner (runc) of test/e2e/fixture.ts's startTestHost. In the benchmark's process its child
// processes (runc) and work held up the GitHub stand-in that stops the clock.
// argv: server URL, admin API key, fixture directory, policy directory, trust store file.
// Prints "ready" once connected; stops (containers removed) on SIGTERM.
import { readFileSync } from 'node:fs';
import { startTestHost, type LoopFixture } from '../test/e2e/fixture.js';
import { parseTrustStore, trustStoreDigest } from '../src/trust/store.js';

const [serverUrl, adminKey, dir, policiesDir, trustStorePath] = process.argv.slice(2);
const store = parseTrustStore(readFileSync(trustStorePath, 'utf8'), trustStorePath);
const fx = { dir, policiesDir, trust: { store, storeDigest: trustStoreDigest(store) } } as unknown as LoopFixture;
const host = await startTestHost(serverUrl, adminKey, fx);
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void host.stop().finally(() => process.exit(0));
});
