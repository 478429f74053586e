import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyLayers } from '../../src/bundle/apply-layers.js';
import { buildRuntimePlan } from '../../host/enforce/index.js';
import { collectFacts, type HostFacts } from '../../host/facts.js';
import { RuncRuntime } from '../../host/runtime/index.js';
import { rawTar, writeOciLayout } from '../bundle/tar-fixtures.js';
import { BUSYBOX, DIGEST, requireHostTools } from './support.js';

let facts: HostFacts;
let base: string;

beforeAll(async () => {
  requireHostTools();
  facts = await collectFacts();
  base = await mkdtemp(join(tmpdir(), 'ct-image-'));
});

afterAll(async () => {
  if (base) await rm(base, { recursive: true, force: true });
});

describe('an image unpacked with applyLayers runs under the host runtime', () => {
  it('layers in order (with a whiteout), the image user from /etc/passwd, RuntimeDefault', async () => {
    const busybox = readFileSync(BUSYBOX);
    const layer1 = rawTar([
      { name: 'bin/', type: '5' },
      { name: 'bin/busybox', data: busybox, mode: 0o755 },
      { name: 'bin/sh', type: '2', linkpath: 'busybox' },
      { name: 'bin/cat', type: '2', linkpath: 'busybox' },
      { name: 'bin/id', type: '2', linkpath: 'busybox' },
      { name: 'bin/ls', type: '2', linkpath: 'busybox' },
      { name: 'etc/', type: '5' },
      { name: 'etc/passwd', data: 'root:x:0:0::/:/bin/sh\napp:x:1000:1000::/app:/bin/sh\n' },
      { name: 'tmp/', type: '5', mode: 0o1777 },
      { name: 'app/', type: '5' },
      { name: 'app/secret.txt', data: 'from layer 1\n' },
    ]);
    const layer2 = rawTar([
      { name: 'app/', type: '5' },
      { name: 'app/.wh.secret.txt', data: '' },
      { name: 'app/hello.txt', data: 'hello from layer 2\n' },
    ]);
    const layout = join(base, 'layout');
    await writeOciLayout(layout, [layer1, layer2]);
    const rootfs = join(base, 'rootfs');
    const applied = await applyLayers(layout, rootfs);
    expect(applied.layers).toHaveLength(2);

    const rt = await RuncRuntime.open({ stateDir: join(base, 'state'), unifiedCgroupMount: facts.cgroup.unifiedMount });
    try {
      const id = `img-${process.pid}`;
      const plan = await buildRuntimePlan(
        {
          id, rootfs, app: { name: 'layered', imageDigest: DIGEST },
          runtime: { command: ['/bin/sh', '-c', 'id -u; cat /app/hello.txt; ls /app'] },
          image: { user: 'app' }, grants: { seccomp: 'required' }, cgroupsPath: `/cerro-torre/${id}`,
        },
        facts,
      );
      expect(plan.user).toEqual({ uid: 1000, gid: 1000 });
      await rt.run(id, plan.config);
      const done = await rt.wait(id, 20000);
      const out = await rt.logs(id);
      await rt.delete(id);
      expect(done.exitCode).toBe(0);
      expect(out).toBe('1000\nhello from layer 2\nhello.txt\n');
    } finally {
      rt.close();
    }
  });
});
