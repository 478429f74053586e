import type { HealthcheckSpec } from '../../src/bundle/runtime-extras.js';
import { EXEC_OUTPUT_MAX, type RuncRuntime } from '../runtime/runc.js';
import { runTool } from '../runtime/tools.js';

export interface ProbeResult {
  ok: boolean;
  /** What a user reads when it failed: the exit code, the HTTP status, the connection error. */
  detail: string;
}

/**
 * The http/tcp probe, run by node inside the container's network namespace (nsenter --net): the
 * app's port is reached on the namespace's own loopback whatever its network mode (none, bridge,
 * host), and nothing is published for it. Its only input is argv; exit 0 means healthy.
 */
const NET_PROBE = `
const [type, port, path, timeoutMs] = process.argv.slice(1);
const fail = (m) => { process.stdout.write(m); process.exit(1); };
setTimeout(() => fail('timed out'), Number(timeoutMs)).unref();
if (type === 'tcp') {
  const s = require('node:net').connect({ host: '127.0.0.1', port: Number(port) });
  s.on('connect', () => { s.destroy(); process.exit(0); });
  s.on('error', (e) => fail(e.code || e.message));
} else {
  const req = require('node:http').get({ host: '127.0.0.1', port: Number(port), path, headers: { 'user-agent': 'cerro-torre-healthcheck' } }, (res) => {
    res.resume();
    process.stdout.write('HTTP ' + res.statusCode);
    process.exit(res.statusCode >= 200 && res.statusCode < 400 ? 0 : 1);
  });
  req.on('error', (e) => fail(e.code || e.message));
}`;

/** One check of a running container; never throws, never outlives timeout (+ a moment to reap). */
export async function probe(runtime: RuncRuntime, id: string, pid: number, hc: HealthcheckSpec): Promise<ProbeResult> {
  const timeoutMs = Math.round(hc.timeout * 1000);
  try {
    if (hc.type === 'exec') {
      const r = await runtime.exec(id, hc.command ?? [], timeoutMs);
      if (r.overflowed) return { ok: false, detail: `exec printed more than ${EXEC_OUTPUT_MAX / 1024 / 1024} MiB on one stream and was killed` };
      if (r.timedOut) return { ok: false, detail: `exec timed out after ${hc.timeout}s` };
      return { ok: r.code === 0, detail: `exit ${r.code}${r.output.trim() ? `: ${r.output.trim().slice(-200)}` : ''}` };
    }
    const r = await runTool('nsenter', [`--target=${pid}`, '--net', '--', process.execPath, '-e', NET_PROBE, hc.type, String(hc.port), hc.path ?? '/', String(timeoutMs)], {
      timeoutMs: timeoutMs + 2000,
    });
    if (r.missing) return { ok: false, detail: 'nsenter is not installed (util-linux)' };
    if (r.timedOut) return { ok: false, detail: `${hc.type} check timed out after ${hc.timeout}s` };
    return { ok: r.code === 0, detail: r.stdout.trim().slice(0, 200) || r.stderr.trim().slice(-200) || `exit ${r.code}` };
  } catch (e) {
    return { ok: false, detail: (e as Error).message.slice(0, 200) };
  }
}
