/**
 * A `ct fetch` that ends mid-download leaves no temporary behind for good: SIGINT or SIGTERM
 * removes it before the process ends (src/cli/interrupt.ts), and what a SIGKILL left is removed
 * by the next fetch to that destination once it has not changed for ten minutes, while the
 * temporary of a fetch still running is kept (src/oci/fetch.ts). Real `ct` processes against a
 * real docker-registry; a proxy in front of it holds the big layer's answer half-way, so a fetch
 * through it is mid-download for as long as the test wants.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { tempTargetName } from '../../src/core/fs.js';
import { pushCtp } from '../../src/oci/push.js';
import { repoRoot } from '../support/cli.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeCtp } from './fixture.js';

const local = ['--allow-address', '127.0.0.1', '--plain-http'];
/** Answers bigger than this (the layer, never the recipe or skeleton) stop after HELD_AFTER bytes. */
const BIG = 1024 * 1024;
const HELD_AFTER = 256 * 1024;

let reg: TestRegistry;
let proxy: Server;
let proxyHost: string;
let dir: string;
let plain: Buffer;
/** How many big answers the proxy is holding half-way. */
let held = 0;

function forward(req: IncomingMessage, res: ServerResponse): void {
  const up = request({ host: '127.0.0.1', port: reg.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
    res.writeHead(r.statusCode ?? 502, r.headers);
    if (Number(r.headers['content-length']) <= BIG) return void r.pipe(res);
    let sent = 0;
    r.on('data', (c: Buffer) => {
      if (sent >= HELD_AFTER) return;
      res.write(c);
      sent += c.length;
      if (sent >= HELD_AFTER) {
        // The rest never comes: the fetch waits mid-download until it is killed.
        r.destroy();
        held++;
      }
    });
  });
  up.on('error', () => res.destroy());
  req.pipe(up);
}

beforeAll(async () => {
  reg = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), 'ct-fetch-interrupted-'));
  proxy = createServer(forward);
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyHost = `127.0.0.1:${(proxy.address() as { port: number }).port}`;
  // Random content: the layer stays ~2 MiB after gzip, one answer the proxy can hold.
  const layers = [{ 'data/blob.bin': randomBytes(2 * 1024 * 1024) }];
  for (const gzip of [false, true]) {
    const ctp = join(dir, `in-${gzip ? 'gzip' : 'plain'}.ctp`);
    await makeCtp(ctp, { name: 'interrupted', layers, gzip });
    await pushCtp(ctp, `${reg.host}/team/${gzip ? 'gzip' : 'plain'}:1`, { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true });
    if (!gzip) plain = await readFile(ctp);
  }
});
afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise<void>((r) => (proxy ? proxy.close(() => r()) : r()));
  await reg?.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Fetch {
  child: ChildProcess;
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** `ct fetch REF -o out` as a user runs it, with its own TMPDIR (the gzip path's work directory goes there). */
function startFetch(reference: string, out: string, tmp: string): Fetch {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'ct.js'), 'fetch', reference, '-o', out, ...local], {
    env: { ...process.env, DOCKER_CONFIG: join(dir, 'no-docker'), TMPDIR: tmp },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, ended };
}

/** The temporaries tempPathFor made for `out`, beside it. */
async function tempsOf(out: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => tempTargetName(n) === basename(out)).sort();
}

/** Waits until the proxy holds one more answer and `out` has one more temporary: the fetch is mid-download. */
async function midDownload(out: string, heldBefore: number, tempsBefore: number, f: Fetch): Promise<void> {
  let exited = false;
  void f.ended.then(() => (exited = true));
  for (const started = Date.now(); ; await new Promise((r) => setTimeout(r, 20))) {
    if (held > heldBefore && (await tempsOf(out)).length > tempsBefore) return;
    if (exited) throw new Error(`ct fetch ended before it was mid-download: ${(await f.ended).stderr}`);
    if (Date.now() - started > 15000) throw new Error('ct fetch never got mid-download');
  }
}

describe('ct fetch interrupted', () => {
  it.each([
    ['SIGTERM', 'plain'],
    ['SIGINT', 'gzip'],
  ] as const)('%s mid-download (%s .ctp): the temporary is removed, nothing at the destination, the process ends by the signal', async (signal, kind) => {
    const out = join(dir, `${signal}.ctp`);
    const tmp = join(dir, `tmp-${signal}`);
    await mkdir(tmp);
    const f = startFetch(`${proxyHost}/team/${kind}:1`, out, tmp);
    await midDownload(out, held, 0, f);
    if (kind === 'gzip') expect((await readdir(tmp)).length).toBe(1); // the work directory of the gzip path
    f.child.kill(signal);
    // Ended by the signal itself (130 / 143 in a shell), not by an exit code.
    expect(await f.ended).toMatchObject({ code: null, signal });
    expect(await tempsOf(out)).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });

  it('the next fetch removes a temporary a SIGKILLed fetch left, not the one of a fetch still running nor another destination\'s', async () => {
    const out = join(dir, 'again.ctp');
    const tmp = join(dir, 'tmp-again');
    await mkdir(tmp);
    const killed = startFetch(`${proxyHost}/team/plain:1`, out, tmp);
    await midDownload(out, held, 0, killed);
    killed.child.kill('SIGKILL');
    expect(await killed.ended).toMatchObject({ signal: 'SIGKILL' });
    const [stale] = await tempsOf(out);
    expect(stale).toBeDefined(); // nothing can run on SIGKILL

    // Started while that leftover is fresh, this fetch leaves it alone (it could be a live one's).
    const running = startFetch(`${proxyHost}/team/plain:1`, out, tmp);
    try {
      await midDownload(out, held, 1, running);
      const live = (await tempsOf(out)).filter((n) => n !== stale);
      expect(live).toHaveLength(1);
      const elevenMinutesAgo = new Date(Date.now() - 11 * 60_000);
      await utimes(join(dir, stale), elevenMinutesAgo, elevenMinutesAgo);
      // Another destination's leftover, just as old: not this destination's to remove.
      const other = '.other.ctp.0123456789ab.tmp';
      await writeFile(join(dir, other), 'x');
      await utimes(join(dir, other), elevenMinutesAgo, elevenMinutesAgo);

      const next = startFetch(`${reg.host}/team/plain:1`, out, tmp);
      expect(await next.ended).toMatchObject({ code: 0 });
      expect(Buffer.compare(await readFile(out), plain)).toBe(0);
      expect(await tempsOf(out)).toEqual(live);
      expect(existsSync(join(dir, other))).toBe(true);
    } finally {
      running.child.kill('SIGTERM');
      await running.ended;
    }
    expect(await tempsOf(out)).toEqual([]);
  });
});
