/**
 * `ct api-key create|list|revoke`: the deploy server's API keys, made by an admin for each agent,
 * CI job or script with the role it needs (server/routes/api-keys.ts). The credential that calls is
 * read from an environment variable (--token-env), never from the command line.
 */
import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { CtError } from '../../core/errors.js';
import { callServer, serverClient, table } from '../server-api.js';

const SERVER = ['--server <url>', 'deploy server URL (https, or http on this machine)'] as const;
const TOKEN_ENV = ['--token-env <name>', 'environment variable holding an admin\'s API key or OIDC token', 'CT_TOKEN'] as const;
const ROLES = ['viewer', 'operator', 'auditor', 'admin'];

interface Common {
  server: string;
  tokenEnv: string;
  json?: boolean;
}

/** `--expires-in` as seconds: whole days (`90d`) or hours (`12h`), 1 hour to 366 days. */
export function ttlSeconds(v: string): number {
  const m = /^(\d{1,4})([dh])$/.exec(v);
  const s = m ? Number(m[1]) * (m[2] === 'd' ? 86_400 : 3_600) : NaN;
  if (!(s >= 3_600 && s <= 366 * 86_400)) throw new CtError('USAGE', `--expires-in must be hours or days from 1h to 366d (e.g. 90d), not ${JSON.stringify(v.slice(0, 32))}`);
  return s;
}

export function register(program: Command): void {
  const keys = program.command('api-key').description('make, list and revoke the deploy server\'s API keys (admins)');
  keys
    .command('create')
    .description('make an API key with a role; prints the key once (stdout), its id and expiry (stderr)')
    .requiredOption(...SERVER)
    .requiredOption('--name <name>', 'what the key is for ([a-z0-9._-], e.g. ci-release or agent-triage)')
    .option('--role <role>', `what the key may do: ${ROLES.join(', ')}`, 'viewer')
    .option('--expires-in <duration>', 'lifetime in hours or days (1h to 366d)', '90d')
    .option(...TOKEN_ENV)
    .option('--json', 'print the whole answer as JSON')
    .action(
      action(async (o: Common & { name: string; role: string; expiresIn: string }) => {
        if (!ROLES.includes(o.role)) throw new CtError('USAGE', `--role must be one of ${ROLES.join(', ')}`);
        const body = { name: o.name, role: o.role, ttlSeconds: ttlSeconds(o.expiresIn) };
        const api = serverClient(o.server, o.tokenEnv);
        const k = await callServer(() => api.post('/api/v1/api-keys', { body }));
        // Printed raw on stdout for scripts: only what a key looks like (a server's answer is not trusted to be one).
        if (typeof k.key !== 'string' || !/^ctk_[A-Za-z0-9_-]{20,196}$/.test(k.key)) throw new CtError('SERVER_UNAVAILABLE', 'the deploy server answered something that is not an API key');
        if (o.json) processIo.out(`${JSON.stringify(k, null, 2)}\n`);
        else {
          processIo.out(`${String(k.key)}\n`);
          processIo.err(`API key ${String(k.id)} (${String(k.name)}, ${String(k.role)}) expires ${String(k.expiresAt)}; it is shown only now\n`);
        }
        return 0;
      }),
    );
  keys
    .command('list')
    .description('list the keys the server accepts, newest first (never their secrets); --all adds revoked, expired, those whose minter is no longer trusted and those whose minter\'s groups have no role now')
    .requiredOption(...SERVER)
    .option(...TOKEN_ENV)
    .option('--all', 'every key, not only those accepted')
    .option('--json', 'print JSON')
    .action(
      action(async (o: Common & { all?: boolean }) => {
        const api = serverClient(o.server, o.tokenEnv);
        const { keys: list, truncated } = (await callServer(() => api.get('/api/v1/api-keys', { query: { state: o.all ? 'all' : 'live' } }))) as { keys: Array<Record<string, unknown>>; truncated?: boolean };
        if (o.json) processIo.out(`${JSON.stringify(list, null, 2)}\n`);
        else {
          // A key narrowed by its minter's groups (the server's mapping now) shows both roles.
          const role = (k: Record<string, unknown>) => (typeof k.roleNow === 'string' && k.roleNow !== k.role ? `${k.roleNow} (was ${String(k.role)})` : String(k.role));
          // EXPIRES: when it stops being accepted (endsAt: its own end or one up its chain, for a live key).
          // FOLLOWS GROUPS: yes when its role is the server's mapping of the groups kept at the sign-in behind it.
          const rows = list.map((k) => [String(k.id), String(k.name), role(k), String(k.state), k.followsGroups === true ? 'yes' : 'no', String(k.endsAt ?? k.expiresAt ?? 'never'), String(k.mintedBy ?? (k.bootstrap ? 'configured' : '-'))]);
          processIo.out(table([['ID', 'NAME', 'ROLE', 'STATE', 'FOLLOWS GROUPS', 'EXPIRES', 'MINTED BY'], ...rows]));
        }
        if (truncated) processIo.err('only the newest 1,000 are shown: revoke what is no longer needed');
        return 0;
      }),
    );
  keys
    .command('revoke')
    .description('revoke an API key for good (and the keys it minted)')
    .argument('<id>', 'the key\'s id (ct api-key list)')
    .requiredOption(...SERVER)
    .option(...TOKEN_ENV)
    .action(
      action(async (id: string, o: Common) => {
        const api = serverClient(o.server, o.tokenEnv);
        await callServer(() => api.delete(`/api/v1/api-keys/${encodeURIComponent(id)}`));
        processIo.err(`API key ${id} revoked\n`);
        return 0;
      }),
    );
}
