/**
 * `ct host token|list|remove`: the deploy server's fleet, from an admin's terminal
 * (server/routes/hosts.ts). Unlike `ct host ps|logs|rm|…`, which act on the machine they run on,
 * these talk to the server named by --server, with the credential in --token-env.
 */
import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { CtError } from '../../core/errors.js';
import { callServer, serverClient, table } from '../server-api.js';

const SERVER = ['--server <url>', 'deploy server URL (https, or http on this machine)'] as const;
const TOKEN_ENV = ['--token-env <name>', 'environment variable holding an API key or OIDC token (admins for token and remove)', 'CT_TOKEN'] as const;
/** What the server takes as a label (server/openapi.ts createEnrollmentToken): at most 64, values up to 256 characters. */
const MAX_LABELS = 64;

interface Common {
  server: string;
  tokenEnv: string;
}

/** `--ttl` as seconds: minutes, hours or days (`30m`, `1h`, `7d`), 1 minute to 7 days as the server allows. */
export function enrolTtlSeconds(v: string): number {
  const m = /^(\d{1,5})([mhd])$/.exec(v);
  const s = m ? Number(m[1]) * { m: 60, h: 3_600, d: 86_400 }[m[2] as 'm' | 'h' | 'd'] : NaN;
  if (!(s >= 60 && s <= 7 * 86_400)) throw new CtError('USAGE', `--ttl must be minutes, hours or days from 1m to 7d (e.g. 1h), not ${JSON.stringify(v.slice(0, 32))}`);
  return s;
}

/** Repeated `--label k=v`, gathered as given (checked in the action: a parser's throw is not reported as a usage error). */
const collect = (v: string, prev: string[]) => [...prev, v];

/** `--label k=v`s as one map; a key given twice is refused rather than silently replaced. */
export function labelsFrom(list: string[]): Record<string, string> {
  if (list.length > MAX_LABELS) throw new CtError('USAGE', `at most ${MAX_LABELS} labels`);
  const out: Record<string, string> = {};
  for (const v of list) {
    const at = v.indexOf('=');
    const key = at > 0 ? v.slice(0, at) : '';
    if (!key || key.length > 63) throw new CtError('USAGE', `--label must be key=value, not ${JSON.stringify(v.slice(0, 64))}`);
    if (Object.hasOwn(out, key)) throw new CtError('USAGE', `--label ${JSON.stringify(key)} is given twice`);
    out[key] = v.slice(at + 1);
  }
  return out;
}

export function registerFleet(host: Command): void {
  host
    .command('token')
    .description('deploy server: mint a one-time enrolment token for a new host (admins); prints the token (stdout) and its expiry (stderr)')
    .requiredOption(...SERVER)
    .option('--label <key=value>', 'a label the enrolled host gets (repeatable; env=<environment> decides which deploys reach it)', collect, [] as string[])
    .option('--ttl <duration>', 'how long the token can be used: 1m to 7d', '1h')
    .option(...TOKEN_ENV)
    .action(
      action(async (o: Common & { label: string[]; ttl: string }) => {
        const body = { labels: labelsFrom(o.label), ttlSeconds: enrolTtlSeconds(o.ttl) };
        const api = serverClient(o.server, o.tokenEnv);
        const t = await callServer(() => api.post('/api/v1/hosts/tokens', { body }));
        // Printed raw on stdout for scripts: only what a token looks like (a server's answer is not trusted to be one).
        if (typeof t.token !== 'string' || !/^cte_[A-Za-z0-9_-]{20,200}$/.test(t.token)) throw new CtError('SERVER_UNAVAILABLE', 'the deploy server answered something that is not an enrolment token');
        processIo.out(`${t.token}\n`);
        processIo.err(`enrolment token expires ${String(t.expiresAt).slice(0, 64)}; use it once: ct host run --enroll-token (or CT_ENROLL_TOKEN)\n`);
        return 0;
      }),
    );
  host
    .command('list')
    .description('deploy server: list the enrolled hosts, whether connected, last seen and labels')
    .requiredOption(...SERVER)
    .option(...TOKEN_ENV)
    .option('--json', 'print JSON')
    .action(
      action(async (o: Common & { json?: boolean }) => {
        const api = serverClient(o.server, o.tokenEnv);
        const { hosts } = (await callServer(() => api.get('/api/v1/hosts'))) as { hosts?: Array<Record<string, unknown>> };
        if (!Array.isArray(hosts)) throw new CtError('SERVER_UNAVAILABLE', 'the deploy server answered something that is not a host list');
        if (o.json) processIo.out(`${JSON.stringify(hosts, null, 2)}\n`);
        else {
          const labels = (l: unknown) => (l && typeof l === 'object' ? Object.entries(l).map(([k, v]) => `${k}=${String(v)}`).join(',') : '') || '-';
          const rows = hosts.map((h) => [String(h.id), String(h.name), h.connected ? 'connected' : 'offline', String(h.lastSeen ?? 'never'), labels(h.labels)]);
          processIo.out(table([['ID', 'NAME', 'STATE', 'LAST SEEN', 'LABELS'], ...rows]));
        }
        return 0;
      }),
    );
  host
    .command('remove')
    .description('deploy server: decommission a host for good (admins): its key stops working, its channel is closed, deploys waiting for it go on with the remaining hosts; its name may be enrolled again. Not ct host rm, which removes a container here')
    .argument('<host>', 'the host\'s id or name (ct host list)')
    .requiredOption(...SERVER)
    .option(...TOKEN_ENV)
    .action(
      action(async (ref: string, o: Common) => {
        const api = serverClient(o.server, o.tokenEnv);
        await callServer(() => api.delete(`/api/v1/hosts/${encodeURIComponent(ref)}`));
        processIo.err(`host ${ref.slice(0, 64)} removed\n`);
        return 0;
      }),
    );
}
