/**
 * Starts a real PostgreSQL cluster for a test run (PostgreSQL 15 from Debian; CI installs it).
 * initdb refuses to run as root, so the cluster runs as the `postgres` user when we are root.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function pgBin(name: string): string {
  const root = '/usr/lib/postgresql';
  const version = existsSync(root) ? readdirSync(root).sort().at(-1) : undefined;
  const p = version ? join(root, version, 'bin', name) : '';
  if (!p || !existsSync(p)) throw new Error(`PostgreSQL binary ${name} not found under ${root}: install the postgresql package`);
  return p;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Postgres { url: string; stop(): Promise<void> }

/**
 * A PostgreSQL of its own. Its port is picked free and then bound by the server: a parallel test
 * may take it in between, and then the start is tried again on another (`firstPort`: the port of
 * the first try, for the test of that).
 */
export async function startPostgres(opts: { firstPort?: number } = {}): Promise<Postgres> {
  const dir = mkdtempSync(join(tmpdir(), 'ct-pg-'));
  chmodSync(dir, 0o777);
  const data = join(dir, 'data');
  const asRoot = process.getuid?.() === 0;
  const run = (bin: string, args: string[]) => {
    const cmd = asRoot ? 'runuser' : bin;
    const argv = asRoot ? ['-u', 'postgres', '--', bin, ...args] : args;
    const r = spawnSync(cmd, argv, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  };
  run(pgBin('initdb'), ['-D', data, '-A', 'trust', '-U', 'ct', '--no-sync', '-E', 'UTF8']);
  let port = 0;
  for (let attempt = 1; ; attempt++) {
    port = attempt === 1 && opts.firstPort ? opts.firstPort : await freePort();
    const log = join(dir, `log.${attempt}`);
    try {
      run(pgBin('pg_ctl'), ['-D', data, '-w', '-l', log, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`, 'start']);
      break;
    } catch (e) {
      const said = existsSync(log) ? readFileSync(log, 'utf8') : '';
      if (attempt >= 3 || !/could not bind|already in use|could not create any TCP\/IP sockets/i.test(said)) throw e;
    }
  }
  execFileSync(pgBin('psql'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'ct', '-d', 'postgres', '-c', 'CREATE DATABASE ct'], { stdio: 'ignore' });
  return {
    url: `postgres://ct@127.0.0.1:${port}/ct`,
    async stop() {
      try { run(pgBin('pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']); } finally { rmSync(dir, { recursive: true, force: true }); }
    },
  };
}
