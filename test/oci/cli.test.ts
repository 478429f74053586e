import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCt } from '../support/cli.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeCtp } from './fixture.js';

const local = ['--allow-address', '127.0.0.1', '--plain-http'];
const noDocker = (dir: string) => ({ DOCKER_CONFIG: join(dir, 'no-docker') });

describe('ct push / ct fetch', () => {
  let reg: TestRegistry;
  let authReg: TestRegistry;
  let dir: string;
  let ctp: string;
  let bundleDigest: string;
  beforeAll(async () => {
    [reg, authReg] = await Promise.all([startRegistry(), startRegistry({ auth: { username: 'bot', password: 'pw' } })]);
    dir = await mkdtemp(join(tmpdir(), 'ct-oci-cli-'));
    ctp = join(dir, 'app.ctp');
    bundleDigest = (await makeCtp(ctp, { gzip: true, name: 'cli' })).bundleDigest;
  });
  afterAll(async () => {
    await Promise.all([reg?.stop(), authReg?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('push then fetch gives the same bytes; fetch prints the bundle digest', async () => {
    const push = await runCt(['push', ctp, `${reg.host}/cli/app:1`, ...local], { env: noDocker(dir) });
    expect(push.code).toBe(0);
    expect(push.stdout.trim()).toMatch(new RegExp(`^${reg.host}/cli/app:1@sha256:[0-9a-f]{64}$`));
    const out = join(dir, 'out.ctp');
    const fetch = await runCt(['fetch', `${reg.host}/cli/app:1`, '-o', out, ...local, '--json'], { env: noDocker(dir) });
    expect(fetch.code).toBe(0);
    expect(JSON.parse(fetch.stdout).bundleDigest).toBe(bundleDigest);
    expect(Buffer.compare(await readFile(out), await readFile(ctp))).toBe(0);
  });

  it('--username with --password-stdin against an htpasswd registry', async () => {
    const denied = await runCt(['push', ctp, `${authReg.host}/cli/app:1`, ...local], { env: noDocker(dir) });
    expect(denied.code).toBe(12);
    expect(denied.stderr).toContain('REGISTRY_AUTH_FAILED');
    const ok = await runCt(['push', ctp, `${authReg.host}/cli/app:1`, ...local, '--username', 'bot', '--password-stdin'], { env: noDocker(dir), input: 'pw\n' });
    expect(ok.code).toBe(0);
    const out = join(dir, 'auth-out.ctp');
    const fetch = await runCt(['fetch', `${authReg.host}/cli/app:1`, '-o', out, ...local], { env: { ...noDocker(dir), CT_REGISTRY_USERNAME: 'bot', CT_REGISTRY_PASSWORD: 'pw' } });
    expect(fetch.code).toBe(0);
    expect(Buffer.compare(await readFile(out), await readFile(ctp))).toBe(0);
  });

  it('refuses a registry outside --allow-registry and loopback without --allow-address (exit 12, nothing written)', async () => {
    const r1 = await runCt(['push', ctp, `${reg.host}/cli/app:2`, ...local, '--allow-registry', 'registry.example.com'], { env: noDocker(dir) });
    expect(r1.code).toBe(12);
    expect(r1.stderr).toContain('REGISTRY_NOT_ALLOWED');
    const out = join(dir, 'never.ctp');
    const r2 = await runCt(['fetch', `${reg.host}/cli/app:1`, '-o', out, '--plain-http'], { env: noDocker(dir) });
    expect(r2.code).toBe(12);
    expect(r2.stderr).toContain('REGISTRY_NOT_ALLOWED');
    // The refusal names the flag that allows it.
    expect(r2.stderr).toContain('refused unless allowed (ct: --allow-address 127.0.0.1 or CT_ALLOWED_ADDRESSES');
    await expect(readFile(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('TLS to a plain-http registry says to add --plain-http', async () => {
    const r = await runCt(['fetch', `${reg.host}/cli/app:1`, '-o', join(dir, 'never.ctp'), '--allow-address', '127.0.0.1'], { env: noDocker(dir) });
    expect(r.code).toBe(12);
    expect(r.stderr).toMatch(/^error\[NETWORK_ERROR\]: .*the registry answered in plain HTTP, not TLS: a local test registry needs --plain-http\)$/m);
  });

  it('a malformed reference is REFERENCE_INVALID (exit 1)', async () => {
    const r = await runCt(['push', ctp, 'not a reference', ...local], { env: noDocker(dir) });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('REFERENCE_INVALID');
  });
});
