import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCt } from '../support/cli.js';
import { makeCtp } from '../oci/fixture.js';

describe('ct attest', () => {
  let dir: string;
  let ctp: string;
  let imageHex: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ct-attest-cli-'));
    ctp = join(dir, 'a.ctp');
    imageHex = (await makeCtp(ctp, { name: 'cliapp', layers: [{ 'var/lib/dpkg/status': 'Package: zlib1g\nStatus: install ok installed\nVersion: 1:1.2.13\nArchitecture: amd64\n' }] })).imageDigest.slice(7);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--type spdx writes a deterministic statement', async () => {
    const env = { SOURCE_DATE_EPOCH: '1700000000' };
    const a = await runCt(['attest', ctp, '--type', 'spdx', '-o', join(dir, 'sbom1.json')], { env });
    const b = await runCt(['attest', ctp, '--type', 'spdx', '-o', join(dir, 'sbom2.json')], { env });
    expect([a.code, b.code]).toEqual([0, 0]);
    const bytes = await readFile(join(dir, 'sbom1.json'));
    expect(Buffer.compare(bytes, await readFile(join(dir, 'sbom2.json')))).toBe(0);
    const st = JSON.parse(bytes.toString('utf8'));
    expect(st.subject[0]).toEqual({ name: 'cliapp', digest: { sha256: imageHex } });
    expect(st.predicate.packages[1].externalRefs[0].referenceLocator).toBe('pkg:deb/debian/zlib1g@1%3A1.2.13?arch=amd64');
  });

  it('--type slsa reads a simulated GitLab CI environment', async () => {
    const env = { GITLAB_CI: 'true', GITHUB_ACTIONS: '', CI_SERVER_URL: 'https://gitlab.example', CI_PROJECT_PATH: 'g/p', CI_COMMIT_SHA: 'a'.repeat(40), CI_JOB_ID: '9', CI_COMMIT_REF_NAME: 'main', SIGSTORE_ID_TOKEN: '' };
    const r = await runCt(['attest', ctp, '--type', 'slsa'], { env });
    expect(r.code).toBe(0);
    const st = JSON.parse(r.stdout);
    expect(st.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(st.predicate.buildDefinition.resolvedDependencies).toEqual([{ uri: 'git+https://gitlab.example/g/p@refs/heads/main', digest: { gitCommit: 'a'.repeat(40) } }]);
    expect(st.predicate.runDetails.metadata.invocationId).toBe('https://gitlab.example/g/p/-/jobs/9');
  });

  it('--type custom with a YAML predicate', async () => {
    await writeFile(join(dir, 'review.yaml'), 'approved: true\n');
    const r = await runCt(['attest', ctp, '--type', 'custom', '--predicate', join(dir, 'review.yaml'), '--predicate-type', 'https://example.com/review/v1', '-o', join(dir, 'c.json')]);
    expect(r.stderr).not.toContain('error');
    expect(r.code).toBe(0);
    const st = JSON.parse(await readFile(join(dir, 'c.json'), 'utf8'));
    expect(st).toMatchObject({ predicateType: 'https://example.com/review/v1', predicate: { approved: true } });
  });

  it('usage errors: unknown type, custom without a predicate type, a missing bundle', async () => {
    expect((await runCt(['attest', ctp, '--type', 'cyclonedx'])).stderr).toContain('USAGE');
    const r = await runCt(['attest', ctp, '--type', 'custom', '--predicate', join(dir, 'review.yaml')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('USAGE');
    const m = await runCt(['attest', join(dir, 'missing.ctp'), '--type', 'spdx']);
    expect(m.code).toBe(11);
  });
});
