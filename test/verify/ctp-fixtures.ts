/**
 * .ctp fixtures built with the bundle library: a one-layer OCI image (a real tar layer), a
 * manifest.toml, security/ files; signed in memory (MemLog) or through real log servers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Digest, sha256Hex } from '../../src/core/digest.js';
import { encodeHeader, padding, END_OF_ARCHIVE } from '../../src/bundle/tar-write.js';
import { MT, OCI_LAYOUT_FILE } from '../../src/bundle/oci.js';
import { serializeManifest } from '../../src/bundle/manifest.js';
import { writeCtp, rewriteCtp } from '../../src/bundle/write.js';
import { openCtp } from '../../src/bundle/read.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { coveredFiles } from '../../src/attest/sign-ctp.js';
import { buildStatement, ctpSubjects } from '../../src/attest/statement.js';
import { signStatement } from '../../src/attest/sign.js';
import { buildVcsBundle, vcsBundleBytes, type VcsLogEntry } from '../../src/attest/vcs-bundle.js';
import { DEFAULT_PREDICATES, type MemLog, type PredicateSpec, type TestKey } from './fixtures.js';

export function layerTar(files: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, text] of Object.entries(files)) {
    const data = Buffer.from(text);
    parts.push(encodeHeader({ name, type: 'File', size: data.length, mode: 0o644, mtime: 0 }), data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export const SECCOMP = JSON.stringify({ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1, syscalls: [{ names: ['read', 'write', 'exit_group'], action: 'SCMP_ACT_ALLOW' }] });

/** The files of an unsigned .ctp: name → bytes. */
export function ctpFiles(opts: { security?: Record<string, string>; extra?: Record<string, string>; layer?: Record<string, string>; version?: string } = {}): { files: Map<string, Buffer>; imageDigest: string } {
  const layer = layerTar(opts.layer ?? { 'app/hello.txt': 'hello\n', 'app/run.sh': '#!/bin/sh\necho hi\n' });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/app/run.sh'] }, rootfs: { type: 'layers', diff_ids: [sha256Digest(layer)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MT.manifest,
      config: { mediaType: MT.config, digest: sha256Digest(config), size: config.length },
      layers: [{ mediaType: MT.layerTar, digest: sha256Digest(layer), size: layer.length }],
    }),
  );
  const imageDigest = sha256Digest(manifest);
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: [{ mediaType: MT.manifest, digest: imageDigest, size: manifest.length }] }));
  const files = new Map<string, Buffer>();
  files.set('manifest.toml', Buffer.from(serializeManifest({ name: 'hello', version: opts.version ?? '1.0', image_digest: imageDigest, metadata: { build_timestamp: '2026-01-01T00:00:00Z', builder: 'ct-test' }, runtime: { user: '1000', capabilities: [] } })));
  files.set('oci-layout/oci-layout', Buffer.from(OCI_LAYOUT_FILE));
  files.set('oci-layout/index.json', index);
  for (const b of [layer, config, manifest]) files.set(`oci-layout/blobs/sha256/${sha256Hex(b)}`, b);
  for (const [n, t] of Object.entries(opts.security ?? { 'security/seccomp.json': SECCOMP })) files.set(n, Buffer.from(t));
  for (const [n, t] of Object.entries(opts.extra ?? {})) files.set(n, Buffer.from(t));
  return { files, imageDigest };
}

export async function tempDir(prefix = 'ct-verify-'): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function writeUnsignedCtp(path: string, opts: Parameters<typeof ctpFiles>[0] = {}): Promise<string> {
  const { files, imageDigest } = ctpFiles(opts);
  await writeCtp(path, files);
  return imageDigest;
}

/** Signs a .ctp with in-memory logs (as `ct sign` would, without HTTP). */
export async function signCtpInMemory(input: string, out: string, signer: TestKey, logs: MemLog[], predicates: PredicateSpec[] = DEFAULT_PREDICATES, time = '2026-11-26T00:00:00Z'): Promise<void> {
  const archive = await openCtp(input);
  const image = checkOciLayout(archive);
  const subjects = ctpSubjects(`${archive.manifest.name}:${archive.manifest.version}`, image.manifestDigest, coveredFiles(archive));
  const envelopes = predicates.map((p) => signStatement(buildStatement(subjects, p.type, p.predicate), signer.privateKey));
  const entries: VcsLogEntry[] = [];
  for (const log of logs) envelopes.forEach((env, i) => entries.push(log.record(env, image.manifestDigest, predicates[i].type, time)));
  await rewriteCtp(input, out, { add: { 'attestations/bundle.json': vcsBundleBytes(buildVcsBundle(envelopes, entries)) } });
}
