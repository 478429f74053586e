import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { openCtp } from '../../src/bundle/read.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { spdxForImage, type SpdxDocument } from '../../src/attest/spdx.js';
import { attestCtp, readCustomPredicate } from '../../src/attest/predicates.js';
import { makeCtp, type LayerFiles } from '../oci/fixture.js';
import { spdxProblems } from './spdx-rules.js';

const DPKG_STATUS = `Package: libc6
Status: install ok installed
Priority: required
Architecture: amd64
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Version: 2.36-9+deb12u4
Description: GNU C Library
 multi-line description
 continues here

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2024a-0+deb12u1
Homepage: https://www.iana.org/time-zones
`;
const OS_DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n';
const APK_DB = `C:Q1hLmDIPAF2kZNsFd1cW9kGpmvcYk=
P:musl
V:1.2.4-r2
A:x86_64
L:MIT
m:Timo Teräs <timo.teras@iki.fi>
U:https://musl.libc.org/

C:Q1yB3fBTvRzbCnB0kc4RFJdbVQ7OQ=
P:busybox
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only
`;
const OS_ALPINE = 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\n';
const LOCK = JSON.stringify({
  name: 'app',
  version: '1.0.0',
  lockfileVersion: 3,
  packages: {
    '': { name: 'app', version: '1.0.0' },
    'node_modules/express': { version: '5.1.0', resolved: 'https://registry.npmjs.org/express/-/express-5.1.0.tgz', integrity: 'sha512-' + Buffer.alloc(64, 1).toString('base64'), license: 'MIT' },
    'node_modules/@types/node': { version: '20.19.0', license: 'MIT' },
    'node_modules/express/node_modules/debug': { version: '4.4.0' },
    'packages/local': { version: '0.0.1', link: true },
  },
});

async function sbom(dir: string, name: string, layers: LayerFiles[], env: NodeJS.ProcessEnv = { SOURCE_DATE_EPOCH: '1700000000' }): Promise<{ doc: SpdxDocument; imageDigest: string }> {
  const path = join(dir, `${name}.ctp`);
  const fx = await makeCtp(path, { name, layers });
  const archive = await openCtp(path);
  const doc = await spdxForImage(archive, checkOciLayout(archive), { env });
  expectSpdxShape(doc);
  return { doc, imageDigest: fx.imageDigest };
}

/** The official SPDX 2.3 schema and the SPDX validator's rules (spdx-rules.ts). */
function expectSpdxShape(d: SpdxDocument): void {
  expect(spdxProblems(d)).toEqual([]);
}

const purls = (d: SpdxDocument) => d.packages.slice(1).map((p) => p.externalRefs![0].referenceLocator);

describe('SPDX 2.3 SBOM of the image rootfs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-spdx-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('Debian: installed dpkg packages with deb purls and the distro', async () => {
    const { doc, imageDigest } = await sbom(dir, 'deb', [{ 'etc/os-release': OS_DEBIAN, 'var/lib/dpkg/status': DPKG_STATUS }]);
    expect(doc.spdxVersion).toBe('SPDX-2.3');
    expect(doc.dataLicense).toBe('CC0-1.0');
    expect(doc.documentNamespace).toBe(`https://cerro-torre.dev/spdx/deb/${imageDigest.slice(7)}`);
    expect(doc.creationInfo.created).toBe('2023-11-14T22:13:20Z');
    expect(purls(doc)).toEqual(['pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12', 'pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12']);
    expect(doc.packages[0]).toMatchObject({ SPDXID: 'SPDXRef-Image', primaryPackagePurpose: 'CONTAINER', checksums: [{ algorithm: 'SHA256', checksumValue: imageDigest.slice(7) }] });
    expect(doc.packages[1].supplier).toBe('Person: GNU Libc Maintainers (debian-glibc@lists.debian.org)');
    expect(doc.files).toBeUndefined();
    expect(doc.relationships[0]).toEqual({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Image' });
    expect(doc.relationships.filter((r) => r.relationshipType === 'CONTAINS')).toHaveLength(2);
  });

  it('Alpine: apk database with apk purls and SHA1 checksums', async () => {
    const { doc } = await sbom(dir, 'apk', [{ 'etc/os-release': OS_ALPINE, 'lib/apk/db/installed': APK_DB }]);
    expect(purls(doc)).toEqual(['pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1', 'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1']);
    const musl = doc.packages.find((p) => p.name === 'musl')!;
    expect(musl.checksums).toEqual([{ algorithm: 'SHA1', checksumValue: Buffer.from('hLmDIPAF2kZNsFd1cW9kGpmvcYk=', 'base64').toString('hex') }]);
    expect(musl.licenseComments).toBe('declared: MIT');
  });

  it('npm: package-lock.json v3 found anywhere (not under node_modules), links and the root skipped', async () => {
    const { doc } = await sbom(dir, 'npm', [{ 'srv/app/package-lock.json': LOCK, 'srv/app/node_modules/x/package-lock.json': '{"lockfileVersion":3,"packages":{"node_modules/evil":{"version":"6.6.6"}}}' }]);
    expect(purls(doc)).toEqual(['pkg:npm/%40types/node@20.19.0', 'pkg:npm/debug@4.4.0', 'pkg:npm/express@5.1.0']);
    const express = doc.packages.find((p) => p.name === 'express')!;
    expect(express.checksums).toEqual([{ algorithm: 'SHA512', checksumValue: Buffer.alloc(64, 1).toString('hex') }]);
    expect(express.downloadLocation).toBe('https://registry.npmjs.org/express/-/express-5.1.0.tgz');
  });

  it('no package database: every file with SHA-1 and SHA-256, later layers and whiteouts applied', async () => {
    const { doc } = await sbom(dir, 'files', [
      { 'bin/app': 'v1', 'etc/config': 'a', 'tmp/cache/x': 'x', 'tmp/cache/y': 'y' },
      { 'bin/app': 'v2', 'etc/.wh.config': '', 'tmp/cache/.wh..wh..opq': '', 'tmp/cache/z': 'z' },
    ]);
    const sha = (s: string, alg = 'sha256') => createHash(alg).update(s).digest('hex');
    expect(doc.files!.map((f) => f.fileName)).toEqual(['./bin/app', './tmp/cache/z']);
    expect(doc.files![0].checksums).toEqual([
      { algorithm: 'SHA1', checksumValue: sha('v2', 'sha1') },
      { algorithm: 'SHA256', checksumValue: sha('v2') },
    ]);
    expect(doc.packages).toHaveLength(1);
    expect(doc.relationships.filter((r) => r.relationshipType === 'CONTAINS').map((r) => r.relatedSpdxElement)).toEqual(doc.files!.map((f) => f.SPDXID));
  });

  it('is deterministic: same image, same bytes; ids derive from purls', async () => {
    const a = await sbom(dir, 'det1', [{ 'etc/os-release': OS_DEBIAN, 'var/lib/dpkg/status': DPKG_STATUS }]);
    const b = await sbom(dir, 'det1', [{ 'etc/os-release': OS_DEBIAN, 'var/lib/dpkg/status': DPKG_STATUS }]);
    expect(JSON.stringify(a.doc)).toBe(JSON.stringify(b.doc));
    const ids = a.doc.packages.map((p) => p.SPDXID);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/);
  });

  it('without SOURCE_DATE_EPOCH, created is the current time', async () => {
    const before = Date.now() - 2000;
    const { doc } = await sbom(dir, 'now', [{ 'a.txt': 'a' }], {});
    expect(Date.parse(doc.creationInfo.created)).toBeGreaterThanOrEqual(before);
  });
});

describe('statements about a .ctp', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-stmt-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('subjects: the image, manifest.toml and security/* — not attestations', async () => {
    const path = join(dir, 's.ctp');
    const fx = await makeCtp(path, { name: 'subj' });
    const archive = await openCtp(path);
    const st = await attestCtp(archive, { kind: 'spdx', env: { SOURCE_DATE_EPOCH: '0' } });
    expect(st._type).toBe('https://in-toto.io/Statement/v1');
    expect(st.predicateType).toBe('https://spdx.dev/Document');
    expect(st.subject.map((s) => s.name)).toEqual(['subj', 'manifest.toml', 'security/seccomp.json']);
    expect(st.subject[0].digest.sha256).toBe(fx.imageDigest.slice(7));
    expect(st.subject[1].digest.sha256).toBe(archive.entries.get('manifest.toml')!.sha256);
  });

  it('custom predicates from YAML or JSON; type must be a URI; must be an object', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'p.yaml'), 'reviewer: alice\nchecks:\n  - lint\n  - unit\n');
    await writeFile(join(dir, 'p.json'), '{"ok": true}');
    await writeFile(join(dir, 'list.yaml'), '- a\n- b\n');
    expect(await readCustomPredicate(join(dir, 'p.yaml'), 'https://example.com/review/v1')).toEqual({ predicateType: 'https://example.com/review/v1', predicate: { reviewer: 'alice', checks: ['lint', 'unit'] } });
    expect((await readCustomPredicate(join(dir, 'p.json'), 'urn:example:ok')).predicate).toEqual({ ok: true });
    await expect(readCustomPredicate(join(dir, 'p.json'), 'not a uri')).rejects.toMatchObject({ code: 'USAGE' });
    await expect(readCustomPredicate(join(dir, 'list.yaml'), 'https://example.com/x')).rejects.toMatchObject({ code: 'JSON_INVALID' });
    await expect(readCustomPredicate(join(dir, 'missing.yaml'), 'https://example.com/x')).rejects.toMatchObject({ code: 'IO_ERROR' });
  });
});
