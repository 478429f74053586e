// The load generator of bench/admission.bench.ts, in its own process so that the figure measures
// the webhook, not the benchmark's event loop: CONCURRENCY clients, each with its own keep-alive
// HTTPS connection (undici), each POSTing the review PER_CLIENT times one after the other.
// argv: url, CA file, review JSON file, concurrency, requests per client. Prints the latencies
// (ms, sorted) as JSON on stdout; exits non-zero if any answer is not `allowed`.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'undici';

const [url, caFile, bodyFile, concurrency, perClient] = process.argv.slice(2);
const body = readFileSync(bodyFile, 'utf8');
const ca = readFileSync(caFile);
const times: number[] = [];
const agents = Array.from({ length: Number(concurrency) }, () => new Agent({ connect: { ca, servername: '' }, connections: 1, pipelining: 1 }));
await Promise.all(
  agents.map(async (dispatcher) => {
    for (let i = 0; i < Number(perClient); i++) {
      const t0 = process.hrtime.bigint();
      const r = await request(`${url}/validate/production?timeout=10s`, { method: 'POST', dispatcher, headers: { 'content-type': 'application/json' }, body });
      const text = await r.body.text();
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
      if (r.statusCode !== 200 || (JSON.parse(text) as { response?: { allowed?: boolean } }).response?.allowed !== true) {
        process.stderr.write(`not allowed: ${r.statusCode} ${text.slice(0, 300)}\n`);
        process.exit(1);
      }
    }
  }),
);
await Promise.all(agents.map((a) => a.close()));
process.stdout.write(JSON.stringify(times.sort((a, b) => a - b)));
