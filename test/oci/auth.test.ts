import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushCtp } from '../../src/oci/push.js';
import { fetchCtp } from '../../src/oci/fetch.js';
import { dockerConfigPath, dockerCredentials } from '../../src/oci/credentials.js';
import { startRegistry, type TestRegistry } from '../support/registry.js';
import { makeCtp } from './fixture.js';

const base = { allowedAddresses: ['127.0.0.1'], plainHttp: true };
const user = { username: 'ci-bot', password: 's3cret pass:word' };

describe('registry with htpasswd auth', () => {
  let reg: TestRegistry;
  let dir: string;
  let ctp: string;
  beforeAll(async () => {
    reg = await startRegistry({ auth: user });
    dir = await mkdtemp(join(tmpdir(), 'ct-oci-auth-'));
    ctp = join(dir, 'in.ctp');
    await makeCtp(ctp, { name: 'authed' });
  });
  afterAll(async () => {
    await reg?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a push without credentials (REGISTRY_AUTH_FAILED)', async () => {
    await expect(pushCtp(ctp, `${reg.host}/team/app:1`, { ...base, noDockerConfig: true })).rejects.toMatchObject({ code: 'REGISTRY_AUTH_FAILED' });
  });

  it('refuses wrong credentials (REGISTRY_AUTH_FAILED)', async () => {
    await expect(pushCtp(ctp, `${reg.host}/team/app:1`, { ...base, credentials: { username: 'ci-bot', password: 'nope' } })).rejects.toMatchObject({ code: 'REGISTRY_AUTH_FAILED' });
  });

  it('push → fetch with explicit credentials is byte-identical', async () => {
    await pushCtp(ctp, `${reg.host}/team/app:1`, { ...base, credentials: user });
    const out = join(dir, 'out.ctp');
    await fetchCtp(`${reg.host}/team/app:1`, out, { ...base, credentials: user });
    expect(Buffer.compare(await readFile(out), await readFile(ctp))).toBe(0);
  });

  it('push → fetch with credentials from a Docker config.json (base64 auth)', async () => {
    const cfgDir = join(dir, 'docker');
    await import('node:fs/promises').then((f) => f.mkdir(cfgDir, { recursive: true }));
    await writeFile(join(cfgDir, 'config.json'), JSON.stringify({ auths: { [`http://${reg.host}`]: { auth: Buffer.from(`${user.username}:${user.password}`).toString('base64') }, 'other.example:5000': { auth: 'eDp5' } } }));
    expect(dockerConfigPath({ DOCKER_CONFIG: cfgDir })).toBe(join(cfgDir, 'config.json'));
    const cfg = join(cfgDir, 'config.json');
    await pushCtp(ctp, `${reg.host}/team/cfg:1`, { ...base, dockerConfig: cfg });
    const out = join(dir, 'out-cfg.ctp');
    await fetchCtp(`${reg.host}/team/cfg:1`, out, { ...base, dockerConfig: cfg });
    expect(Buffer.compare(await readFile(out), await readFile(ctp))).toBe(0);
  });

  it('reads username/password entries and ignores other hosts', async () => {
    const cfg = join(dir, 'c2.json');
    await writeFile(cfg, JSON.stringify({ auths: { 'a.example': { username: 'u', password: 'p' }, 'b.example:5000': { auth: Buffer.from('x:y').toString('base64') } } }));
    expect(await dockerCredentials('a.example', cfg)).toEqual({ username: 'u', password: 'p' });
    expect(await dockerCredentials('b.example:5000', cfg)).toEqual({ username: 'x', password: 'y' });
    expect(await dockerCredentials('b.example', cfg)).toBeUndefined();
    expect(await dockerCredentials('c.example', join(dir, 'missing.json'))).toBeUndefined();
    await writeFile(cfg, '{not json');
    await expect(dockerCredentials('a.example', cfg)).rejects.toMatchObject({ code: 'JSON_INVALID' });
  });
});
