/**
 * A `ct fetch` that ends mid-download leaves no temporary behind for good: SIGINT or SIGTERM
 * unlinks its temporary beside the destination before the process ends by that signal
 * (src/cli/interrupt.ts); the gzip path's uncompressed tar has no name once open, so not even
 * SIGKILL leaves it; and what a SIGKILL left beside the destination is removed by the next fetch
 * to it once it has not changed for ten minutes. That clean-up unlinks only regular files of this
 * user: a directory, a symlink or another user's file planted under such a name is left
 * (src/oci/fetch-temps.ts). A live fetch's temporary is kept even when the fetch is stalled for
 * longer than the stale age, since it is touched meanwhile (library-level, with both periods made
 * short). Real `ct` processes against a real docker-registry; a proxy in front of it holds the big
 * layer's answer half-way, so a fetch through it is mid-download for as long as the test wants.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { tempTargetName } from '../../src/core/fs.js';
import { fetchCtp } from '../../src/oci/fetch.js';
import { pushCtp } from '../../src/oci/push.js';
import { repoRoot } from '../support/cli.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { plantStaleTemps, victimIntact } from '../support/stale-temps.js';
import { makeCtp } from './fixture.js';

const local = ['--allow-address', '127.0.0.1', '--plain-http'];
/** Answers bigger than this (the layer, never the recipe or skeleton) stop after HELD_AFTER bytes. */
const BIG = 1024 * 1024;
const HELD_AFTER = 256 * 1024;

let reg: TestRegistry;
let proxy: Server;
let proxyHost: string;
let dir: string;
const clientOptions = { allowedAddresses: ['127.0.0.1'], plainHttp: true, noDockerConfig: true };
let plain: Buffer;
let gzipped: Buffer;
/** How many big answers the proxy has held half-way. */
let held = 0;
/** The answers it is holding (ended to make a fetch in this process fail). */
const holding: ServerResponse[] = [];

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
        holding.push(res);
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
    await pushCtp(ctp, `${reg.host}/team/${gzip ? 'gzip' : 'plain'}:1`, clientOptions);
    if (gzip) gzipped = await readFile(ctp);
    else plain = await readFile(ctp);
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

/** `ct fetch REF -o out` as a user runs it, with its own TMPDIR (where the gzip path's work directory was). */
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

/** The files `pid` has open whose names were unlinked (`/proc/PID/fd`, Linux). */
async function unlinkedOpenFiles(pid: number): Promise<string[]> {
  const fds = await readdir(`/proc/${pid}/fd`);
  const targets = await Promise.all(fds.map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')));
  return targets.filter((t) => t.endsWith(' (deleted)')).map((t) => t.slice(0, -' (deleted)'.length));
}

const ELEVEN_MINUTES = 11 * 60_000;

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
    // One temporary by name (the gzip path's tar is open but unnamed), nothing in TMPDIR.
    expect(await tempsOf(out)).toHaveLength(1);
    f.child.kill(signal);
    // Ended by the signal itself (130 / 143 in a shell), not by an exit code.
    expect(await f.ended).toMatchObject({ code: null, signal });
    expect(await tempsOf(out)).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
    expect(existsSync(out)).toBe(false);
  });

  it.each(['plain', 'gzip'] as const)("the next fetch removes a temporary a SIGKILLed fetch left (%s .ctp), not the one of a fetch still running nor another destination's", async (kind) => {
    const out = join(dir, `again-${kind}.ctp`);
    const tmp = join(dir, `tmp-again-${kind}`);
    await mkdir(tmp);
    const killed = startFetch(`${proxyHost}/team/${kind}:1`, out, tmp);
    await midDownload(out, held, 0, killed);
    if (kind === 'gzip') {
      // The uncompressed tar is there, open, with no name (and none in TMPDIR): SIGKILL cannot leave it.
      expect((await unlinkedOpenFiles(killed.child.pid!)).filter((p) => tempTargetName(basename(p)) === basename(out))).toHaveLength(1);
    }
    killed.child.kill('SIGKILL');
    expect(await killed.ended).toMatchObject({ signal: 'SIGKILL' });
    expect(await readdir(tmp)).toEqual([]);
    const leftover = await tempsOf(out);
    expect(leftover).toHaveLength(1); // nothing can run on SIGKILL
    const [stale] = leftover;

    // Started while that leftover is fresh, this fetch leaves it alone (it could be a live one's).
    const running = startFetch(`${proxyHost}/team/${kind}:1`, out, tmp);
    try {
      await midDownload(out, held, 1, running);
      const live = (await tempsOf(out)).filter((n) => n !== stale);
      expect(live).toHaveLength(1);
      const elevenMinutesAgo = new Date(Date.now() - ELEVEN_MINUTES);
      await utimes(join(dir, stale), elevenMinutesAgo, elevenMinutesAgo);
      // Another destination's leftover, just as old: not this destination's to remove.
      const other = `.other-${kind}.ctp.0123456789ab.tmp`;
      await writeFile(join(dir, other), 'x');
      await utimes(join(dir, other), elevenMinutesAgo, elevenMinutesAgo);

      const next = startFetch(`${reg.host}/team/${kind}:1`, out, tmp);
      expect(await next.ended).toMatchObject({ code: 0 });
      expect(Buffer.compare(await readFile(out), kind === 'gzip' ? gzipped : plain)).toBe(0);
      expect(await tempsOf(out)).toEqual(live);
      expect(existsSync(join(dir, other))).toBe(true);
    } finally {
      running.child.kill('SIGTERM');
      await running.ended;
    }
    expect(await tempsOf(out)).toEqual([]);
    expect(await readdir(tmp)).toEqual([]);
  });

  it("the clean-up leaves a directory, symlinks and another user's file named as a stale temporary (-o in a directory others can write)", async () => {
    const out = join(dir, 'hostile.ctp');
    const planted = await plantStaleTemps(out, ELEVEN_MINUTES);
    const f = startFetch(`${reg.host}/team/plain:1`, out, tmpdir());
    expect(await f.ended).toMatchObject({ code: 0 });
    expect(Buffer.compare(await readFile(out), plain)).toBe(0);
    expect(existsSync(planted.ours)).toBe(false);
    for (const p of planted.kept) expect(lstatSync(p, { throwIfNoEntry: false })).toBeDefined();
    expect(await victimIntact(planted)).toBe(true);
  });
});

describe('a live fetch stalled for longer than the stale age (fetchCtp)', () => {
  const staleTempMs = 1500;
  const tempHeartbeatMs = 150;

  it.each(['plain', 'gzip'] as const)('keeps its temporary (%s .ctp): touched meanwhile, it is not taken by a concurrent fetch, which removes a leftover as old', async (kind) => {
    const out = join(dir, `stalled-${kind}.ctp`);
    const temporaries = new Set<string>();
    const heldBefore = held;
    const stalled = fetchCtp(`${proxyHost}/team/${kind}:1`, out, { ...clientOptions, staleTempMs, tempHeartbeatMs, temporaries });
    const ended = stalled.then(
      () => 'done',
      (e: unknown) => e,
    );
    for (const started = Date.now(); held === heldBefore || (await tempsOf(out)).length === 0; await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() - started > 15000) throw new Error('the fetch never got mid-download');
    }
    const [live] = await tempsOf(out);
    // All it has by name, and all it told its caller to remove on a signal.
    expect([...temporaries]).toEqual([join(dir, live)]);
    // No byte comes for longer than the stale age; the mtime is the heartbeat's.
    await new Promise((r) => setTimeout(r, staleTempMs + 500));
    expect(Date.now() - (await lstat(join(dir, live))).mtimeMs).toBeLessThan(staleTempMs / 2);
    // What the concurrent clean-up does remove: a leftover unchanged for as long as the stall.
    const leftover = `.stalled-${kind}.ctp.0123456789ab.tmp`;
    await writeFile(join(dir, leftover), 'x');
    const then = new Date(Date.now() - staleTempMs - 500);
    await utimes(join(dir, leftover), then, then);

    await fetchCtp(`${reg.host}/team/${kind}:1`, out, { ...clientOptions, staleTempMs, tempHeartbeatMs });
    expect(await tempsOf(out)).toEqual([live]);
    expect(await Promise.race([ended, 'still running'])).toBe('still running');

    // The registry's answer breaks off: the fetch fails and removes its temporary.
    for (const res of holding.splice(0)) res.destroy();
    expect(await ended).toBeInstanceOf(Error);
    expect(await tempsOf(out)).toEqual([]);
    expect(temporaries.size).toBe(0);
  });
});
