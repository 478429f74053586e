/**
 * SBOMs that SPDX tools accept: every SPDX 2.3 document ct writes — `ct attest --type spdx`, and the
 * SBOM `ct sign` signs by default — passes the official SPDX 2.3 JSON schema and the SPDX
 * validator's rules (spdx-rules.ts), for an image with packages and for one listed file by file;
 * the rules themselves are checked to catch each violation; docs/attestations.md's example is
 * exactly what ct produces.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCt } from '../support/cli.js';
import { makeCtp } from '../oci/fixture.js';
import { openCtp } from '../../src/bundle/read.js';
import { attestCtp } from '../../src/attest/sign-ctp.js';
import { spdxProblems } from './spdx-rules.js';

const EPOCH = '1700000000';
const DOCS = join(process.cwd(), 'docs/attestations.md');
const DPKG = 'Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\nArchitecture: amd64\n';
/** The image of docs/attestations.md's example: two files, no package database. */
const EXAMPLE_LAYERS = [{ 'bin/hello': '#!/bin/busybox sh\necho hello\n', 'etc/motd': 'hi\n' }];

describe('SPDX 2.3 documents written by ct', () => {
  let dir: string;
  const ctps: Record<string, string> = {};
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-spdx-rules-'));
    for (const [name, layers] of [['files', EXAMPLE_LAYERS], ['packages', [{ 'var/lib/dpkg/status': DPKG, 'etc/os-release': 'ID=debian\nVERSION_ID="12"\n', 'bin/x': 'x' }]]] as const) {
      ctps[name] = join(dir, `${name}.ctp`);
      await makeCtp(ctps[name], { name: name === 'files' ? 'hello' : 'app', layers: [...layers] });
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const attest = async (ctp: string) => {
    const out = join(dir, `${Math.random().toString(36).slice(2)}.json`);
    const r = await runCt(['attest', ctp, '--type', 'spdx', '-o', out], { env: { SOURCE_DATE_EPOCH: EPOCH } });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/^wrote .*: https:\/\/spdx\.dev\/Document about 3 subject\(s\)\n$/) });
    return JSON.parse(await readFile(out, 'utf8')) as { predicate: Record<string, unknown> };
  };

  it.each(['files', 'packages'])('ct attest --type spdx (image with %s) passes the schema and the validator rules', async (kind) => {
    const st = await attest(ctps[kind]);
    expect(spdxProblems(st.predicate, { sourceDateEpoch: EPOCH })).toEqual([]);
    const image = (st.predicate.packages as { SPDXID: string; filesAnalyzed: boolean }[])[0];
    expect(image.filesAnalyzed).toBe(kind === 'files');
  });

  it.each(['files', 'packages'])('the SBOM ct sign signs (image with %s) passes the schema and the validator rules', async (kind) => {
    const saved = process.env.SOURCE_DATE_EPOCH;
    process.env.SOURCE_DATE_EPOCH = EPOCH;
    try {
      const { privateKey } = generateKeyPairSync('ed25519');
      const r = await attestCtp(await openCtp(ctps[kind]), { key: privateKey, logs: [] });
      const i = r.predicateTypes.indexOf('https://spdx.dev/Document');
      const statement = JSON.parse(Buffer.from(r.envelopes[i].payload, 'base64').toString('utf8')) as { predicate: unknown };
      expect(spdxProblems(statement.predicate, { sourceDateEpoch: EPOCH })).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.SOURCE_DATE_EPOCH;
      else process.env.SOURCE_DATE_EPOCH = saved;
    }
  });

  it('the rules catch each violation the SPDX validator reports', async () => {
    const base = (await attest(ctps.files)).predicate;
    const broken = (edit: (d: Record<string, any>) => void) => { // eslint-disable-line @typescript-eslint/no-explicit-any
      const d = structuredClone(base) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      edit(d);
      return spdxProblems(d, { sourceDateEpoch: EPOCH });
    };
    expect(broken((d) => (d.relationships = d.relationships.filter((r: { relationshipType: string }) => r.relationshipType !== 'DESCRIBES')))).toEqual(['no SPDXRef-DOCUMENT DESCRIBES relationship']);
    expect(broken((d) => (d.files[0].checksums = d.files[0].checksums.filter((c: { algorithm: string }) => c.algorithm !== 'SHA1')))).toEqual([
      `file ${d0(base).fileName}: no SHA1 checksum`, expect.stringMatching(/packageVerificationCode .* is not/)]);
    expect(broken((d) => (d.files[0].fileName = d.files[0].fileName.slice(2)))).toEqual([`file ${d0(base).fileName.slice(2)}: name is not relative (./…)`]);
    expect(broken((d) => delete d.packages[0].packageVerificationCode)).toEqual(['package SPDXRef-Image: filesAnalyzed without packageVerificationCode']);
    expect(broken((d) => { d.packages[0].filesAnalyzed = false; delete d.packages[0].packageVerificationCode; })).toEqual([expect.stringMatching(/^package SPDXRef-Image: filesAnalyzed is false but it has 2 file\(s\)$/)]);
    expect(broken((d) => (d.creationInfo.created = '2020-01-01T00:00:00Z'))).toEqual([expect.stringContaining('not SOURCE_DATE_EPOCH')]);
    expect(broken((d) => (d.packages[0].SPDXID = 'Image'))).toEqual(expect.arrayContaining([expect.stringMatching(/^schema: \/packages\/0\/SPDXID/)]));
    expect(broken((d) => (d.packages[0].primaryPackagePurpose = 'OPERATING_SYSTEM'))).toEqual([expect.stringMatching(/^schema: \/packages\/0\/primaryPackagePurpose/)]);
  });

  it("docs/attestations.md's example is exactly what ct attest --type spdx writes", async () => {
    const md = readFileSync(DOCS, 'utf8');
    const m = /<!-- example: spdx -->\s*```json\n([\s\S]*?)```/.exec(md);
    const actual = await attest(ctps.files);
    expect(m).not.toBeNull();
    expect(JSON.parse(m![1])).toEqual(actual);
    expect(spdxProblems(actual.predicate, { sourceDateEpoch: EPOCH })).toEqual([]);
  });
});

function d0(doc: Record<string, unknown>): { fileName: string } {
  return (doc.files as { fileName: string }[])[0];
}
