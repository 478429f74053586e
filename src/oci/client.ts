import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CtError } from '../core/errors.js';
import type { ErrorCode } from '../core/codes.js';
import { isDigest, sha256Digest } from '../core/digest.js';
import { dockerConfigPath, dockerCredentials, type Credentials } from './credentials.js';
import { NetworkGuard, type GuardOptions } from './guard.js';
import { MANIFEST_ACCEPT, MT, type Descriptor, type ImageIndex, type ImageManifest } from './media-types.js';
import { descriptorOf, descriptorsOf, MAX_REGISTRY_JSON, readBounded, readPrefix, readRegistryJson, registryJsonObject } from './remote-json.js';
import type { ImageReference } from './reference.js';
import { RegistryTransport, type Reply } from './transport.js';
import { discard } from './blob-parts.js';

export interface ClientOptions extends GuardOptions {
  /** Explicit credentials; otherwise the Docker config.json entry for the registry, if any. */
  credentials?: Credentials;
  /** Path of a Docker config.json (default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`). */
  dockerConfig?: string;
  /** Do not read Docker credentials at all. */
  noDockerConfig?: boolean;
  plainHttp?: boolean;
  /** To connect, for an answer's head, between body reads, and an answer's grace before `minBytesPerSecond` applies (default 60 s). */
  timeoutMs?: number;
  /** The least average rate of every answer body once `timeoutMs` has gone by (default 16 KiB/s; docs/registry.md "Time bounds"). */
  minBytesPerSecond?: number;
  /** Epoch ms after which no request is made and answers still arriving fail (default none; see setDeadline). */
  deadline?: number;
  /** Blobs up to this size go in one PUT; bigger ones in PATCH chunks of `chunkSize` (default 64 MiB both). */
  monolithicMax?: number;
  chunkSize?: number;
}

/** Where a blob's bytes come from: memory, or a byte range of a file (streamed, never buffered). */
export type BlobSource = { bytes: Buffer } | { file: string; start: number; length: number };

export interface PulledManifest {
  bytes: Buffer;
  mediaType: string;
  digest: string;
}

const MAX_MANIFEST = MAX_REGISTRY_JSON;
/** Descriptors read from one referrers list (API answer or tag index). */
const MAX_REFERRERS = 10_000;
const MIB = 1024 * 1024;

/** A distribution-spec client for one repository (docs/registry.md). */
export class RegistryClient {
  private constructor(readonly ref: ImageReference, private readonly t: RegistryTransport, private readonly opts: ClientOptions) {}

  /**
   * Checks the registry against the allow-list and its addresses against the guard BEFORE any
   * request, then loads credentials for exactly this registry host.
   */
  static async open(ref: ImageReference, opts: ClientOptions = {}): Promise<RegistryClient> {
    const guard = new NetworkGuard(opts);
    guard.assertRegistryAllowed(ref.registry);
    await guard.assertHostAllowed(ref.apiHost.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''));
    let credentials = opts.credentials;
    if (!credentials && !opts.noDockerConfig) credentials = await dockerCredentials(ref.registry, opts.dockerConfig ?? dockerConfigPath());
    const t = new RegistryTransport(ref.apiHost, ref.repository, { guard, credentials, plainHttp: opts.plainHttp, timeoutMs: opts.timeoutMs, minBytesPerSecond: opts.minBytesPerSecond, deadline: opts.deadline });
    return new RegistryClient(ref, t, opts);
  }

  async close(): Promise<void> {
    await this.t.close();
  }

  /** Moves the overall deadline (epoch ms), e.g. once the caller knows how many bytes are to come. */
  setDeadline(at: number | undefined): void {
    this.t.deadline = at;
  }

  private get base(): string {
    return `/v2/${this.ref.repository}`;
  }

  private async fail(r: Reply, what: string): Promise<never> {
    const text = await readPrefix(r.body, 500);
    const code = r.status === 404 ? 'REGISTRY_NOT_FOUND' : r.status === 401 || r.status === 403 ? 'REGISTRY_AUTH_FAILED' : 'REGISTRY_ERROR';
    throw new CtError(code, `${this.ref.registry}/${this.ref.repository}: ${what} answered HTTP ${r.status}${text ? `: ${text.replace(/\s+/g, ' ')}` : ''}`, { registry: this.ref.registry, repository: this.ref.repository, status: r.status });
  }

  // ---- blobs ----------------------------------------------------------------------------------

  async blobExists(digest: string): Promise<boolean> {
    const r = await this.t.send({ method: 'HEAD', url: `${this.base}/blobs/${digest}`, actions: 'pull' });
    await r.body.dump();
    if (r.status === 200) return true;
    if (r.status === 404) return false;
    return this.fail(r, `HEAD blob ${digest}`);
  }

  /** Uploads a blob unless the registry has it already. Returns true when bytes were sent. */
  async pushBlob(desc: { digest: string; size: number }, source: BlobSource): Promise<boolean> {
    if (await this.blobExists(desc.digest)) return false;
    const start = await this.t.send({ method: 'POST', url: `${this.base}/blobs/uploads/`, headers: { 'content-length': '0' }, actions: 'pull,push' });
    await (start.status === 202 ? start.body.dump() : this.fail(start, 'POST blob upload'));
    let location = header(start, 'location');
    const monolithicMax = this.opts.monolithicMax ?? 64 * MIB;
    if (desc.size > monolithicMax) {
      const chunk = this.opts.chunkSize ?? 64 * MIB;
      for (let off = 0; off < desc.size; off += chunk) {
        const len = Math.min(chunk, desc.size - off);
        const r = await this.t.send({
          method: 'PATCH',
          url: location,
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(len), 'content-range': `${off}-${off + len - 1}` },
          body: bodyOf(source, off, len),
          actions: 'pull,push',
        });
        await (r.status === 202 ? r.body.dump() : this.fail(r, `PATCH blob ${desc.digest} at ${off}`));
        location = header(r, 'location');
      }
      const done = await this.t.send({ method: 'PUT', url: withDigest(location, desc.digest), headers: { 'content-length': '0' }, actions: 'pull,push' });
      await (done.status === 201 ? done.body.dump() : this.fail(done, `PUT blob ${desc.digest}`));
    } else {
      const done = await this.t.send({
        method: 'PUT',
        url: withDigest(location, desc.digest),
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: bodyOf(source, 0, desc.size),
        actions: 'pull,push',
      });
      await (done.status === 201 ? done.body.dump() : this.fail(done, `PUT blob ${desc.digest}`));
    }
    return true;
  }

  /**
   * Opens a blob for reading, unchecked: for callers that verify what they assemble as a whole
   * (ct fetch hashes the rebuilt .ctp). Everyone else uses pullBlob.
   */
  async openBlob(digest: string): Promise<Readable> {
    const r = await this.t.send({ method: 'GET', url: `${this.base}/blobs/${digest}`, actions: 'pull' });
    if (r.status !== 200) return this.fail(r, `GET blob ${digest}`);
    return r.body;
  }

  /**
   * Opens `length` bytes of a blob from `start` with a Range request, unchecked like openBlob.
   * `ranged` is false when the registry ignored the range and sent the whole blob (200); a 206
   * must state exactly the range asked for (and the blob's size, when it states one).
   */
  async openBlobRange(digest: string, start: number, length: number, blobSize: number): Promise<{ stream: Readable; ranged: boolean }> {
    const end = start + length - 1;
    const r = await this.t.send({ method: 'GET', url: `${this.base}/blobs/${digest}`, headers: { range: `bytes=${start}-${end}` }, actions: 'pull' });
    if (r.status === 200) return { stream: r.body, ranged: false };
    if (r.status !== 206) return this.fail(r, `GET blob ${digest} bytes ${start}-${end}`);
    const stated = String(r.headers['content-range'] ?? '');
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(stated.trim());
    if (!m || Number(m[1]) !== start || Number(m[2]) !== end || (m[3] !== '*' && Number(m[3]) !== blobSize)) {
      discard(r.body);
      throw new CtError('REGISTRY_ERROR', `blob ${digest}: asked for bytes ${start}-${end}/${blobSize}, the registry sent ${JSON.stringify(stated.slice(0, 100))}`, { digest });
    }
    return { stream: r.body, ranged: true };
  }

  /**
   * Streams a blob into `out`, checking its size and sha256 on the way; a mismatch is an error
   * (the registry, or anything between, cannot substitute content).
   */
  async pullBlob(desc: { digest: string; size: number }, out: Writable, opts: { end?: boolean } = {}): Promise<void> {
    const r = await this.t.send({ method: 'GET', url: `${this.base}/blobs/${desc.digest}`, actions: 'pull' });
    if (r.status !== 200) return this.fail(r, `GET blob ${desc.digest}`);
    const hash = createHash('sha256');
    let n = 0;
    const check = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        n += chunk.length;
        if (n > desc.size) return cb(new CtError('DIGEST_MISMATCH', `blob ${desc.digest}: more than the expected ${desc.size} bytes`, { digest: desc.digest }));
        hash.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        const got = `sha256:${hash.digest('hex')}`;
        if (n !== desc.size || got !== desc.digest) return cb(new CtError('DIGEST_MISMATCH', `blob ${desc.digest}: received ${n} bytes with digest ${got}`, { digest: desc.digest, actual: got }));
        cb();
      },
    });
    await pipeline(r.body, check, out, { end: opts.end ?? true });
  }

  async pullBlobBytes(desc: { digest: string; size: number }, max = 64 * MIB): Promise<Buffer> {
    if (desc.size > max) throw new CtError('REGISTRY_ERROR', `blob ${desc.digest} is ${desc.size} bytes, more than ${max}`, { digest: desc.digest });
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        cb();
      },
    });
    await this.pullBlob(desc, sink);
    return Buffer.concat(chunks);
  }

  // ---- manifests ------------------------------------------------------------------------------

  /** PUT a manifest by tag or digest; returns its digest and whether the registry processed `subject`. */
  async putManifest(reference: string, bytes: Buffer, mediaType: string): Promise<{ digest: string; subjectAccepted: boolean }> {
    const digest = sha256Digest(bytes);
    const r = await this.t.send({ method: 'PUT', url: `${this.base}/manifests/${reference}`, headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: bytes, actions: 'pull,push' });
    if (r.status !== 201) return this.fail(r, `PUT manifest ${reference}`);
    await r.body.dump();
    const got = r.headers['docker-content-digest'];
    if (typeof got === 'string' && got !== digest) throw new CtError('REGISTRY_ERROR', `registry stored manifest ${reference} as ${got}, expected ${digest}`, { expected: digest, actual: got });
    return { digest, subjectAccepted: r.headers['oci-subject'] !== undefined };
  }

  /** DELETE a manifest by digest (distribution answers 202; 405 where deleting is disabled). */
  async deleteManifest(digest: string): Promise<void> {
    if (!isDigest(digest)) throw new CtError('REGISTRY_ERROR', `manifest reference ${JSON.stringify(digest)} is not a digest`, {});
    const r = await this.t.send({ method: 'DELETE', url: `${this.base}/manifests/${digest}`, actions: 'delete' });
    if (r.status !== 202 && r.status !== 200) return this.fail(r, `DELETE manifest ${digest}`);
    await r.body.dump();
  }

  /**
   * GET a manifest by tag or digest. Authenticate before parsing: the bytes (at most `max`, 4 MiB
   * by default, the stream dropped past that: `tooLarge` with details.limit) are hashed first and, asked by digest, must hash to it; asked by tag,
   * to the Docker-Content-Digest the registry states, if it states one. Only then is the JSON
   * parsed (depth-bounded) for its mediaType.
   */
  async getManifest(reference: string, accept: string[] = MANIFEST_ACCEPT, tooLarge: ErrorCode = 'REGISTRY_ERROR', max = MAX_MANIFEST): Promise<PulledManifest> {
    const r = await this.t.send({ method: 'GET', url: `${this.base}/manifests/${reference}`, headers: { accept: accept.join(', ') }, actions: 'pull' });
    if (r.status !== 200) return this.fail(r, `GET manifest ${reference}`);
    const len = Number(r.headers['content-length'] ?? 0);
    if (len > max) {
      discard(r.body);
      throw new CtError(tooLarge, `manifest ${reference} is ${len} bytes, more than ${max}`, { reference, limit: max });
    }
    const bytes = await readBounded(r.body, max, `manifest ${reference}`, tooLarge);
    const digest = sha256Digest(bytes);
    if (isDigest(reference) && digest !== reference) throw new CtError('DIGEST_MISMATCH', `manifest ${reference}: registry returned bytes with digest ${digest}`, { expected: reference, actual: digest });
    const stated = r.headers['docker-content-digest'];
    if (typeof stated === 'string' && isDigest(stated) && stated !== digest) {
      throw new CtError('DIGEST_MISMATCH', `manifest ${reference}: registry says ${stated}, the bytes hash to ${digest}`, { expected: stated, actual: digest });
    }
    const ct = String(r.headers['content-type'] ?? '').split(';')[0].trim();
    const parsed = registryJsonObject(bytes, `manifest ${reference}`);
    return { bytes, mediaType: typeof parsed.mediaType === 'string' ? parsed.mediaType : ct, digest };
  }

  /**
   * An image manifest by digest (its bytes hashed before parsing), with the descriptors this
   * client acts on checked: layers, config and subject are sha256 descriptors. At most `max` bytes
   * are read (REGISTRY_ERROR past that; see getImageManifestWithin).
   */
  async getImageManifest(digest: string, max = MAX_MANIFEST): Promise<ImageManifest> {
    if (!isDigest(digest)) throw new CtError('REGISTRY_ERROR', `manifest reference ${JSON.stringify(digest)} is not a digest`, {});
    const m = registryJsonObject((await this.getManifest(digest, [MT.imageManifest], 'REGISTRY_ERROR', max)).bytes, `manifest ${digest}`);
    const layers = descriptorsOf(m.layers, `manifest ${digest}: layers`);
    const subject = m.subject === undefined ? undefined : descriptorOf(m.subject, `manifest ${digest}: subject`);
    const config = m.config === undefined ? undefined : descriptorOf(m.config, `manifest ${digest}: config`);
    if (m.artifactType !== undefined && typeof m.artifactType !== 'string') throw new CtError('REGISTRY_ERROR', `manifest ${digest}: artifactType is not a string`, {});
    return { ...(m as unknown as ImageManifest), layers, ...(subject ? { subject } : {}), ...(config ? { config } : {}) };
  }

  /**
   * As getImageManifest, but undefined when the manifest is larger than `max`: no more than `max`
   * bytes of it are read. For manifests a caller expects to be small and skips otherwise.
   */
  async getImageManifestWithin(digest: string, max: number): Promise<ImageManifest | undefined> {
    try {
      return await this.getImageManifest(digest, max);
    } catch (e) {
      if (e instanceof CtError && e.code === 'REGISTRY_ERROR' && e.details.limit === max) return undefined;
      throw e;
    }
  }

  /** The digest a tag points at, or undefined when the tag does not exist. */
  async resolve(reference: string): Promise<string | undefined> {
    const r = await this.t.send({ method: 'HEAD', url: `${this.base}/manifests/${reference}`, headers: { accept: MANIFEST_ACCEPT.join(', ') }, actions: 'pull' });
    await r.body.dump();
    if (r.status === 404) return undefined;
    if (r.status !== 200) return this.fail(r, `HEAD manifest ${reference}`);
    const d = r.headers['docker-content-digest'];
    if (typeof d === 'string' && isDigest(d)) return d;
    return (await this.getManifest(reference)).digest;
  }

  async listTags(): Promise<string[]> {
    const tags: string[] = [];
    let url: string | undefined = `${this.base}/tags/list?n=1000`;
    for (let page = 0; url && page < 100; page++) {
      const r = await this.t.send({ method: 'GET', url, actions: 'pull' });
      if (r.status === 404) {
        await r.body.dump();
        return tags;
      }
      if (r.status !== 200) return this.fail(r, 'GET tags');
      const json = await readRegistryJson(r.body, 'tag list');
      if (Array.isArray(json.tags)) tags.push(...json.tags.filter((x): x is string => typeof x === 'string'));
      const link = r.headers.link;
      const m = typeof link === 'string' ? /<([^>]+)>;\s*rel="next"/.exec(link) : null;
      url = m ? m[1] : undefined;
    }
    return tags;
  }

  // ---- referrers ------------------------------------------------------------------------------

  /**
   * Manifests whose `subject` is `digest`: the referrers API when the registry has it, else the
   * `sha256-<hex>` tag fallback (distribution-spec 1.1). Filtered by artifactType when given.
   */
  async referrers(digest: string, artifactType?: string): Promise<{ descriptors: Descriptor[]; via: 'api' | 'tag' }> {
    const q = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const r = await this.t.send({ method: 'GET', url: `${this.base}/referrers/${digest}${q}`, headers: { accept: MT.imageIndex }, actions: 'pull' });
    const ct = String(r.headers['content-type'] ?? '');
    if (r.status === 200 && ct.startsWith(MT.imageIndex)) {
      const idx = registryJsonObject(await readBounded(r.body, MAX_REGISTRY_JSON, `referrers of ${digest}`, 'REGISTRY_REFERRERS_TOO_LARGE'), `referrers of ${digest}`);
      if (Array.isArray(idx.manifests) && idx.manifests.length > MAX_REFERRERS) throw tooManyReferrers(`referrers of ${digest}`, MAX_REFERRERS);
      const list = idx.manifests === undefined ? [] : descriptorsOf(idx.manifests, `referrers of ${digest}: manifests`, MAX_REFERRERS);
      return { descriptors: artifactType ? list.filter((d) => d.artifactType === artifactType) : list, via: 'api' };
    }
    if (r.status !== 404 && r.status !== 200) return this.fail(r, `GET referrers ${digest}`);
    await r.body.dump();
    const idx = await this.fallbackIndex(digest);
    const list = idx?.manifests ?? [];
    return { descriptors: artifactType ? list.filter((d) => d.artifactType === artifactType) : list, via: 'tag' };
  }

  static fallbackTag(digest: string): string {
    return digest.replace(':', '-');
  }

  private async fallbackIndex(digest: string): Promise<ImageIndex | undefined> {
    try {
      const m = await this.getManifest(RegistryClient.fallbackTag(digest), [MT.imageIndex], 'REGISTRY_REFERRERS_TOO_LARGE');
      const idx = registryJsonObject(m.bytes, `referrers tag ${RegistryClient.fallbackTag(digest)}`);
      if (!Array.isArray(idx.manifests)) throw new CtError('REGISTRY_ERROR', `referrers tag ${RegistryClient.fallbackTag(digest)} is not an image index`, {});
      if (idx.manifests.length > MAX_REFERRERS) throw tooManyReferrers(`referrers tag ${RegistryClient.fallbackTag(digest)}`, MAX_REFERRERS);
      return { ...(idx as unknown as ImageIndex), manifests: descriptorsOf(idx.manifests, `referrers tag ${RegistryClient.fallbackTag(digest)}: manifests`, MAX_REFERRERS) };
    } catch (e) {
      if (e instanceof CtError && e.code === 'REGISTRY_NOT_FOUND') return undefined;
      throw e;
    }
  }

  /**
   * Records a referrer in the `sha256-<hex>` tag index (read, add, write back). Used when the
   * registry did not answer the manifest PUT with `OCI-Subject`, i.e. has no referrers API.
   * `place` lays out the new list (deploy VSAs replace their older ones: vsa-index.ts); by
   * default the descriptor is appended unless already there. Distribution has no conditional
   * PUT: two writers that read the same index each write theirs, and the later one wins (one
   * GET and one PUT wide; callers publish nothing else in between). docs/registry.md.
   */
  async addReferrerByTag(subjectDigest: string, desc: Descriptor, place?: (list: Descriptor[], added: Descriptor) => Descriptor[]): Promise<void> {
    const idx: ImageIndex = (await this.fallbackIndex(subjectDigest)) ?? { schemaVersion: 2, mediaType: MT.imageIndex, manifests: [] };
    const before = idx.manifests;
    const after = place ? place(before, desc) : before.some((d) => d.digest === desc.digest) ? before : [...before, desc];
    if (after.length === before.length && after.every((d, i) => d === before[i])) return;
    await this.putManifest(RegistryClient.fallbackTag(subjectDigest), Buffer.from(JSON.stringify({ ...idx, manifests: after })), MT.imageIndex);
  }
}

/**
 * A referrers list past the read bound: ct cannot read (nor rewrite) it; docs/registry.md
 * "Referrers: API or tag fallback" says how to shrink it by hand.
 */
function tooManyReferrers(what: string, limit: number): CtError {
  return new CtError('REGISTRY_REFERRERS_TOO_LARGE', `${what}: more than ${limit} descriptors`, { where: what, limit });
}

function header(r: Reply, name: string): string {
  const v = r.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) throw new CtError('REGISTRY_ERROR', `registry reply to ${r.url} lacks a ${name} header`, { url: r.url });
  return new URL(s, r.url).href;
}

function withDigest(location: string, digest: string): string {
  const u = new URL(location);
  u.searchParams.set('digest', digest);
  return u.href;
}

function bodyOf(source: BlobSource, off: number, len: number): Buffer | (() => Readable) {
  if ('bytes' in source) return source.bytes.subarray(off, off + len);
  if (len === 0) return Buffer.alloc(0);
  return () => createReadStream(source.file, { start: source.start + off, end: source.start + off + len - 1, highWaterMark: MIB });
}

