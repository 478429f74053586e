// Starts a real `docker-registry` (distribution 2.8, Debian package `docker-registry`) on
// 127.0.0.1 for the registry tests: a free port, a temp storage dir, a generated config.yml and,
// when asked, htpasswd (bcrypt) authentication. A missing binary is a failure, never a skip:
// CI installs the package, and a silently skipped registry test would prove nothing.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';

export const REGISTRY_BIN = process.env.CT_DOCKER_REGISTRY_BIN ?? '/usr/bin/docker-registry';

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the host part of references to this registry. */
  host: string;
  port: number;
  url: string;
  storageDir: string;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Enables htpasswd auth with this single user. */
  auth?: { username: string; password: string };
  /** The port to try first instead of a free one (a test of this helper gives it a taken one). */
  port?: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  if (!existsSync(REGISTRY_BIN)) {
    throw new Error(`${REGISTRY_BIN} not found: install the Debian package docker-registry (apt-get install docker-registry); registry tests cannot run without it`);
  }
  // The free port is found by binding and releasing it; another process may take it before the
  // registry binds, so a failed start is retried on a new port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts, attempt === 1 ? opts.port : undefined);
    } catch (e) {
      if (attempt >= 3) throw e;
    }
  }
}

/** Every answer of the registry started here carries its nonce: readiness is this registry's answer, not any on its port. */
const NONCE_HEADER = 'X-Ct-Test-Registry';

async function startOnce(opts: RegistryOptions, wanted: number | undefined): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'ct-registry-'));
  const storageDir = join(dir, 'storage');
  const port = wanted ?? (await freePort());
  const nonce = randomBytes(16).toString('hex');
  const host = `127.0.0.1:${port}`;
  let authBlock = '';
  if (opts.auth) {
    // bcrypt is the only hash distribution's htpasswd accepts; cost 4 keeps the tests fast.
    const line = `${opts.auth.username}:${bcrypt.hashSync(opts.auth.password, 4)}\n`;
    await writeFile(join(dir, 'htpasswd'), line);
    authBlock = `auth:\n  htpasswd:\n    realm: ct-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storageDir}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${host}`,
    '  secret: ct-test-secret',
    '  headers:',
    `    ${NONCE_HEADER}: [${nonce}]`,
    authBlock,
  ].join('\n');
  await writeFile(join(dir, 'config.yml'), config);

  const child = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = `http://${host}`;
  try {
    await waitReady(url, nonce, child, () => stderr);
  } catch (e) {
    await stopChild(child, exited);
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    host,
    port,
    url,
    storageDir,
    async stop() {
      await stopChild(child, exited);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function waitReady(url: string, nonce: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited with ${child.exitCode}: ${stderr()}`);
    try {
      // Bounded: whatever else took the port may accept and never answer.
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2000), redirect: 'manual' });
      await res.body?.cancel();
      if ((res.status === 200 || res.status === 401) && res.headers.get(NONCE_HEADER) === nonce) return;
    } catch {
      // not listening yet, or not this registry
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`docker-registry did not become ready at ${url}: ${stderr()}`);
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}
