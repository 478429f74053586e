// push and fetch of a 256 MiB image through a real docker-registry on 127.0.0.1: `ct push` /
// `ct fetch` against `skopeo copy` (oci: layout ⇄ docker://) in the same run. Every measurement
// gets a fresh registry, so neither tool can skip blobs the other (or an earlier run) uploaded.
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult } from './harness.js';
import { writeCtp, type CtpFileSource } from '../src/bundle/write.js';
import { serializeManifest } from '../src/bundle/manifest.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MIB = 1024 * 1024;
const LAYERS = 4;
const LAYER_BYTES = 64 * MIB;
const RUNS = 5;

interface TestRegistry {
  host: string;
  stop(): Promise<void>;
}

/**
 * The registry launcher lives in test/support/registry.ts (not compiled into build/); esbuild,
 * which builds everything else, bundles that one file for the bench so there is a single copy.
 */
async function loadRegistrySupport(): Promise<{ startRegistry: () => Promise<TestRegistry> }> {
  const { build } = await import('esbuild');
  // Written under build/ so that its bare imports (bcryptjs) resolve from the repository's node_modules.
  const target = join(repoRoot, 'build', `.registry-support-${process.pid}.mjs`);
  await build({ entryPoints: [join(repoRoot, 'test', 'support', 'registry.ts')], bundle: true, platform: 'node', format: 'esm', target: 'node20', outfile: target, packages: 'external', logLevel: 'error', absWorkingDir: repoRoot });
  try {
    return (await import(pathToFileURL(target).href)) as { startRegistry: () => Promise<TestRegistry> };
  } finally {
    await rm(target, { force: true });
  }
}

function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, unset: string[] = []): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const childEnv = { ...process.env, ...env };
    for (const name of unset) delete childEnv[name];
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: childEnv });
    let err = '';
    child.stderr.on('data', (d) => (err = (err + d).slice(-2000)));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`));
      else resolve(Number(process.hrtime.bigint() - t0) / 1e9);
    });
  });
}

async function randomFile(path: string, size: number): Promise<string> {
  const fh = await open(path, 'w');
  const hash = createHash('sha256');
  try {
    for (let done = 0; done < size; done += 4 * MIB) {
      const b = randomBytes(Math.min(4 * MIB, size - done));
      hash.update(b);
      await fh.write(b);
    }
  } finally {
    await fh.close();
  }
  return `sha256:${hash.digest('hex')}`;
}

/** A 256 MiB image as an OCI layout (for skopeo) and as an uncompressed .ctp (for ct). */
export async function makeImage(dir: string): Promise<{ layoutDir: string; ctp: string; bytes: number }> {
  const layoutDir = join(dir, 'layout');
  const blobs = join(layoutDir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const layers = [];
  const files = new Map<string, CtpFileSource>();
  let bytes = 0;
  for (let i = 0; i < LAYERS; i++) {
    const tmp = join(dir, `layer${i}`);
    const digest = await randomFile(tmp, LAYER_BYTES);
    const { rename } = await import('node:fs/promises');
    await rename(tmp, join(blobs, digest.slice(7)));
    layers.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: LAYER_BYTES });
    files.set(`oci-layout/blobs/sha256/${digest.slice(7)}`, { path: join(blobs, digest.slice(7)), size: LAYER_BYTES, sha256: digest.slice(7) });
    bytes += LAYER_BYTES;
  }
  const put = async (data: Buffer): Promise<{ digest: string; size: number }> => {
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    await writeFile(join(blobs, digest.slice(7)), data);
    files.set(`oci-layout/blobs/sha256/${digest.slice(7)}`, data);
    bytes += data.length;
    return { digest, size: data.length };
  };
  const config = await put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } })));
  const manifest = await put(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config }, layers })));
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'bench' } }] }));
  await writeFile(join(layoutDir, 'index.json'), index);
  await writeFile(join(layoutDir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  files.set('oci-layout/index.json', index);
  files.set('oci-layout/oci-layout', Buffer.from('{"imageLayoutVersion":"1.0.0"}'));
  files.set('manifest.toml', Buffer.from(serializeManifest({ name: 'bench', version: '1.0.0', image_digest: manifest.digest, metadata: { build_timestamp: '2026-01-01T00:00:00Z', builder: 'bench' } })));
  files.set('attestations/bundle.json', Buffer.from('{"bench":true}'));
  const ctp = join(dir, 'bench.ctp');
  await writeCtp(ctp, files, { gzip: false, mtime: 0 });
  return { layoutDir, ctp, bytes };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(): Promise<BenchResult[]> {
  if (!existsSync('/usr/bin/skopeo')) {
    console.log('skopeo is not installed (apt-get install skopeo): no baseline, registry benchmark skipped');
    return [];
  }
  const dir = await mkdtemp(join(tmpdir(), 'ct-bench-registry-'));
  try {
    const { startRegistry } = await loadRegistrySupport();
    const img = await makeImage(dir);
    const ct = join(repoRoot, 'bin', 'ct.js');
    const local = ['--allow-address', '127.0.0.1', '--plain-http'];
    const env = { DOCKER_CONFIG: join(dir, 'no-docker') };
    const t = { ctPush: [] as number[], skPush: [] as number[], ctFetch: [] as number[], skFetch: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      const [rs, rc] = await Promise.all([startRegistry(), startRegistry()]);
      try {
        // Alternate the order so neither tool always runs on a warmer page cache.
        const skPush = () => timed('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${img.layoutDir}:bench`, `docker://${rs.host}/bench/img:1`]);
        const ctPush = () => timed(process.execPath, [ct, 'push', img.ctp, `${rc.host}/bench/img:1`, ...local], env);
        if (i % 2 === 0) {
          t.skPush.push(await skPush());
          t.ctPush.push(await ctPush());
        } else {
          t.ctPush.push(await ctPush());
          t.skPush.push(await skPush());
        }
        const outDir = join(dir, `pulled-${i}`);
        const skFetch = () => timed('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${rs.host}/bench/img:1`, `oci:${outDir}:bench`]);
        const ctFetch = () => timed(process.execPath, [ct, 'fetch', `${rc.host}/bench/img:1`, '-o', join(dir, `fetched-${i}.ctp`), ...local], env);
        if (i % 2 === 0) {
          t.skFetch.push(await skFetch());
          t.ctFetch.push(await ctFetch());
        } else {
          t.ctFetch.push(await ctFetch());
          t.skFetch.push(await skFetch());
        }
        await rm(outDir, { recursive: true, force: true });
        await rm(join(dir, `fetched-${i}.ctp`), { force: true });
      } finally {
        await Promise.all([rs.stop(), rc.stop()]);
      }
    }
    // ct's own start-up (loading every command module) is part of each ct figure; shown in the notes.
    const startups: number[] = [];
    for (let i = 0; i < RUNS; i++) startups.push(await timed(process.execPath, [ct, '--version']));
    // NODE_EXTRA_CA_CERTS (set machine-wide on some CI images) makes Node read and parse that
    // certificate file at every start, TLS or not; Go's skopeo reads its CAs only for TLS. Measured
    // here without it too, so that the note says how much of ct's start-up is this machine's setting.
    let withoutCa = '';
    if (process.env.NODE_EXTRA_CA_CERTS) {
      const bare: number[] = [];
      for (let i = 0; i < RUNS; i++) bare.push(await timed(process.execPath, [ct, '--version'], {}, ['NODE_EXTRA_CA_CERTS']));
      withoutCa = ` (${median(bare).toFixed(2)} s without NODE_EXTRA_CA_CERTS, which this machine sets: Node reads that file at every start)`;
    }
    const startup = `ct start-up ${median(startups).toFixed(2)} s included${withoutCa}`;
    const mbps = (secs: number) => img.bytes / MIB / secs;
    return [
      { name: 'registry push 256 MiB (ct push vs skopeo copy oci:→docker://)', value: mbps(median(t.ctPush)), baseline: mbps(median(t.skPush)), unit: 'MiB/s', better: 'higher', target: { min: 0.8 }, note: `median of ${RUNS}, fresh registry each; ${startup}` },
      { name: 'registry fetch 256 MiB (ct fetch vs skopeo copy docker://→oci:)', value: mbps(median(t.ctFetch)), baseline: mbps(median(t.skFetch)), unit: 'MiB/s', better: 'higher', target: { min: 1.0 }, note: `median of ${RUNS}; #14 target 4; ct also checks the whole .ctp digest; ${startup}` },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
