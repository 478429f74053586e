/**
 * A local stand-in for the npm registry (registry.npmjs.org), for tests that run `npm install`
 * exactly as a CI job does, without the internet: it answers the two requests npm makes,
 * `GET /<name>` (the packument: every version with its manifest and `dist.tarball`/`dist.integrity`)
 * and `GET` of a tarball. It serves
 *  - the tarballs it is given (e.g. this project's `npm pack`), and
 *  - every package installed in a `node_modules` tree (nested versions included), each packed
 *    on first request the way npm publishes it: under `package/`, without `node_modules/`, and,
 *    for native addons (binding.gyp), without the locally compiled `build/`.
 * Unknown names answer 404 as the registry does. Every request is recorded.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { create as tarCreate } from 'tar';

export interface NpmRegistry {
  url: string;
  requests: string[];
  close(): Promise<void>;
}

interface Version { manifest: Record<string, unknown>; dir?: string; tarball?: Buffer }

/** Every package directory under `nodeModules` (scoped and nested ones included). */
function collect(nodeModules: string, into: Map<string, Map<string, Version>>): void {
  if (!existsSync(nodeModules)) return;
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue;
    const dirs = entry.startsWith('@') ? readdirSync(join(nodeModules, entry)).map((n) => join(nodeModules, entry, n)) : [join(nodeModules, entry)];
    for (const dir of dirs) {
      const file = join(dir, 'package.json');
      if (!existsSync(file)) continue;
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
      const name = manifest.name as string;
      const versions = into.get(name) ?? new Map<string, Version>();
      if (!versions.has(manifest.version as string)) versions.set(manifest.version as string, { manifest, dir });
      into.set(name, versions);
      collect(join(dir, 'node_modules'), into);
    }
  }
}

async function pack(dir: string): Promise<Buffer> {
  const native = existsSync(join(dir, 'binding.gyp'));
  const entries = readdirSync(dir).filter((n) => n !== 'node_modules' && !(native && n === 'build'));
  const chunks: Buffer[] = [];
  // Paths under package/ as in a published tarball; fixed mtime and portable headers.
  const stream = tarCreate({ gzip: true, cwd: dir, prefix: 'package', portable: true, mtime: new Date(0) }, entries);
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

const integrity = (b: Buffer) => `sha512-${createHash('sha512').update(b).digest('base64')}`;

export async function startNpmRegistry(o: { nodeModules: string; tarballs: { name: string; version: string; manifest: Record<string, unknown>; file: string }[] }): Promise<NpmRegistry> {
  const packages = new Map<string, Map<string, Version>>();
  collect(o.nodeModules, packages);
  for (const t of o.tarballs) packages.set(t.name, new Map([[t.version, { manifest: t.manifest, tarball: readFileSync(t.file) }]]));
  const requests: string[] = [];
  let url = '';
  const tarballOf = async (v: Version) => (v.tarball ??= await pack(v.dir as string));
  const tarballPath = (name: string, version: string) => `/-/tarballs/${encodeURIComponent(name)}/${version}.tgz`;

  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent((req.url ?? '/').split('?')[0]);
    requests.push(`${req.method} ${path}`);
    const answer = async () => {
      const t = /^\/-\/tarballs\/(.+)\/([^/]+)\.tgz$/.exec(path);
      if (t) {
        const v = packages.get(t[1])?.get(t[2]);
        if (!v) return res.writeHead(404).end();
        const body = await tarballOf(v);
        return res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
      }
      const name = path.slice(1);
      const versions = packages.get(name);
      if (!versions) return res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Not found"}');
      const doc: { name: string; 'dist-tags': { latest: string }; versions: Record<string, unknown> } = { name, 'dist-tags': { latest: '' }, versions: {} };
      for (const [version, v] of versions) {
        const body = await tarballOf(v);
        doc.versions[version] = { ...v.manifest, name, version, dist: { tarball: `${url}${tarballPath(name, version)}`, integrity: integrity(body) } };
        doc['dist-tags'].latest = version;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
    };
    answer().catch((e: unknown) => res.writeHead(500).end(String(e)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { url, requests, close: () => new Promise<void>((r) => server.close(() => r())) };
}
