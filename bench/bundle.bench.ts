// `.ctp` benchmarks (issue 2): (a) `ct pack` of a generated tree (default 256 MiB of mixed file
// sizes; CT_BENCH_MIB to change) against standard tools doing the same work in the same run —
// GNU tar | gzip -6, sha256sum of the uncompressed and compressed layer, the layout written and
// archived with tar, the result fsynced (target ratio ≤ 1.5); (b) the digest check of the bundle
// (openCtp + checkOciLayout) against tar -x + sha256sum of every blob (target ≤ 1.3).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { checkOciLayout } from '../src/bundle/check-layout.js';
import { packCtp } from '../src/bundle/pack/pack.js';
import { openCtp } from '../src/bundle/read.js';
import { timeMs, type BenchResult } from './harness.js';

const sh = promisify(execFile);
const MiB = 1024 * 1024;

/** Deterministic PRNG (xorshift32) so every run generates the same tree. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/**
 * A tree like an application image: a few large files, many medium and small ones; content is
 * mostly text-like (compresses to roughly a third) with some incompressible binary stretches.
 */
async function generateTree(root: string, totalBytes: number): Promise<number> {
  const rand = rng(42);
  const words = Array.from({ length: 4000 }, () => Array.from({ length: 2 + Math.floor(rand() * 10) }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join(''));
  const textParts: string[] = [];
  let len = 0;
  while (len < 4 * MiB) {
    const w = words[Math.floor(rand() * words.length)];
    textParts.push(w);
    len += w.length + 1;
  }
  const corpus = Buffer.from(textParts.join(' '));
  const noise = Buffer.alloc(MiB);
  for (let i = 0; i < noise.length; i++) noise[i] = Math.floor(rand() * 256);
  const content = (size: number): Buffer => {
    const out = Buffer.alloc(size);
    for (let off = 0; off < size; ) {
      const useNoise = rand() < 0.15;
      const src = useNoise ? noise : corpus;
      const n = Math.min(size - off, 4096 + Math.floor(rand() * 60000));
      const start = Math.floor(rand() * (src.length - n));
      src.copy(out, off, start, start + n);
      off += n;
    }
    return out;
  };
  const sizes: number[] = [];
  let sum = 0;
  const plan = [
    { share: 0.55, min: 4 * MiB, max: 24 * MiB },
    { share: 0.35, min: 32 * 1024, max: MiB },
    { share: 0.1, min: 256, max: 32 * 1024 },
  ];
  for (const p of plan) {
    let part = 0;
    const want = Math.floor(totalBytes * p.share);
    while (part < want) {
      const s = Math.min(want - part, Math.floor(p.min + rand() * (p.max - p.min)));
      sizes.push(s);
      part += s;
    }
    sum += part;
  }
  for (const [i, s] of sizes.entries()) {
    const dir = join(root, `d${i % 37}`, `s${i % 5}`);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${i}.dat`), content(s));
  }
  await writeFile(join(root, 'ct.toml'), 'name = "bench"\nversion = "1"\n[image]\narchitecture = "amd64"\nos = "linux"\n');
  return sum;
}

// The same work with standard tools: deterministic tar of the tree, gzip -6 (our level), both
// digests by sha256sum running beside the pipeline, the OCI layout written, archived, fsynced.
const BASELINE_PACK = String.raw`
set -euo pipefail
tree="$1"; work="$2"
rm -rf "$work"; mkdir -p "$work/b/oci-layout/blobs/sha256"
mkfifo "$work/p1" "$work/p2"
sha256sum < "$work/p1" > "$work/diffid" & a=$!
sha256sum < "$work/p2" > "$work/digest" & b=$!
(cd "$tree" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --exclude=./ct.toml -cf - .) \
  | tee "$work/p1" | gzip -6 -n | tee "$work/p2" > "$work/layer"
wait $a $b
blobs="$work/b/oci-layout/blobs/sha256"
d=$(cut -c1-64 "$work/digest"); diff=$(cut -c1-64 "$work/diffid")
mv "$work/layer" "$blobs/$d"; size=$(stat -c %s "$blobs/$d")
printf '{"architecture":"amd64","config":{},"os":"linux","rootfs":{"diff_ids":["sha256:%s"],"type":"layers"}}' "$diff" > "$work/config"
c=$(sha256sum "$work/config" | cut -c1-64); csize=$(stat -c %s "$work/config"); mv "$work/config" "$blobs/$c"
printf '{"config":{"digest":"sha256:%s","mediaType":"application/vnd.oci.image.config.v1+json","size":%s},"layers":[{"digest":"sha256:%s","mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","size":%s}],"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2}' "$c" "$csize" "$d" "$size" > "$work/manifest"
m=$(sha256sum "$work/manifest" | cut -c1-64); msize=$(stat -c %s "$work/manifest"); mv "$work/manifest" "$blobs/$m"
printf '{"manifests":[{"digest":"sha256:%s","mediaType":"application/vnd.oci.image.manifest.v1+json","size":%s}],"schemaVersion":2}' "$m" "$msize" > "$work/b/oci-layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/b/oci-layout/oci-layout"
printf 'name = "bench"\nversion = "1"\nimage_digest = "sha256:%s"\n' "$m" > "$work/b/manifest.toml"
(cd "$work/b" && tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/out.tmp" manifest.toml oci-layout)
sync "$work/out.tmp"; mv "$work/out.tmp" "$work/out.ctp"
`;

const BASELINE_CHECK = String.raw`
set -euo pipefail
ctp="$1"; x="$2"
rm -rf "$x"; mkdir -p "$x"
tar -xf "$ctp" -C "$x"
sha256sum "$x"/oci-layout/blobs/sha256/* > /dev/null
`;

export async function run(): Promise<BenchResult[]> {
  const mib = Number(process.env.CT_BENCH_MIB ?? 256);
  const runs = Number(process.env.CT_BENCH_RUNS ?? 3);
  const base = await mkdtemp(join(tmpdir(), 'ct-bench-bundle-'));
  try {
    const tree = join(base, 'tree');
    await mkdir(tree);
    const bytes = await generateTree(tree, mib * MiB);
    const out = join(base, 'ours.ctp');
    const work = join(base, 'baseline');
    const ours = await timeMs(() => packCtp({ from: { dir: tree }, out, mtime: 0 }), runs);
    const theirs = await timeMs(() => sh('bash', ['-c', BASELINE_PACK, 'pack', tree, work], { maxBuffer: 1 << 20 }), runs);
    const checkOurs = await timeMs(async () => checkOciLayout(await openCtp(out)), runs);
    const x = join(base, 'extracted');
    const checkTheirs = await timeMs(() => sh('bash', ['-c', BASELINE_CHECK, 'check', out, x]), runs);
    const note = `${(bytes / MiB).toFixed(0)} MiB tree`;
    return [
      { name: 'ct pack (dir → .ctp)', value: ours, baseline: theirs, unit: 'ms', better: 'lower', target: { max: 1.5 }, note: `${note}; baseline tar|gzip -6|sha256sum ×2, layout, tar, sync` },
      { name: 'openCtp + checkOciLayout', value: checkOurs, baseline: checkTheirs, unit: 'ms', better: 'lower', target: { max: 1.3 }, note: `${note}; baseline tar -x + sha256sum of every blob` },
    ];
  } finally {
    await rm(base, { recursive: true, force: true });
  }
}
