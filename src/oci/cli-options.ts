import type { Command } from 'commander';
import { CtError } from '../core/errors.js';
import { timeoutOption } from '../core/timeout-option.js';
import type { ClientOptions } from './client.js';

/** Registry options shared by `ct push` and `ct fetch` (docs/registry.md). */
export interface RegistryCliOptions {
  allowRegistry?: string[];
  allowAddress?: string[];
  plainHttp?: boolean;
  username?: string;
  passwordStdin?: boolean;
  dockerConfig?: string;
  timeout?: string;
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(',').map((s) => s.trim()).filter(Boolean)];

export function addRegistryOptions(cmd: Command): Command {
  return cmd
    .option('--allow-registry <host[:port]>', 'only talk to these registries (repeatable, comma-separated; env CT_ALLOWED_REGISTRIES)', collect)
    .option('--allow-address <ip|cidr>', 'allow these private/loopback addresses, e.g. 127.0.0.1 (repeatable; env CT_ALLOWED_ADDRESSES)', collect)
    .option('--plain-http', 'speak http:// to the registry (local test registries only)')
    .option('--username <user>', 'registry user (password from --password-stdin or CT_REGISTRY_PASSWORD)')
    .option('--password-stdin', 'read the registry password from standard input')
    .option('--docker-config <file>', 'Docker config.json to read credentials from (default $DOCKER_CONFIG/config.json or ~/.docker/config.json)')
    .option('--timeout <ms>', 'per-request timeout in milliseconds (default 60000)');
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export async function clientOptionsFrom(o: RegistryCliOptions, env: NodeJS.ProcessEnv = process.env): Promise<ClientOptions> {
  const fromEnv = (v: string | undefined) => (v ? collect(v) : []);
  const allowedRegistries = [...(o.allowRegistry ?? []), ...fromEnv(env.CT_ALLOWED_REGISTRIES)];
  const allowedAddresses = [...(o.allowAddress ?? []), ...fromEnv(env.CT_ALLOWED_ADDRESSES)];
  const opts: ClientOptions = { allowedRegistries, allowedAddresses, plainHttp: !!o.plainHttp, dockerConfig: o.dockerConfig };
  const username = o.username ?? env.CT_REGISTRY_USERNAME;
  if (username) {
    const password = o.passwordStdin ? await readStdin() : env.CT_REGISTRY_PASSWORD;
    if (password === undefined) throw new CtError('USAGE', '--username needs --password-stdin or CT_REGISTRY_PASSWORD', {});
    opts.credentials = { username, password };
  } else if (o.passwordStdin) {
    throw new CtError('USAGE', '--password-stdin needs --username', {});
  }
  if (o.timeout !== undefined) opts.timeoutMs = timeoutOption(o.timeout);
  return opts;
}
