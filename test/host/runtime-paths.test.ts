/**
 * The runtime removes a container's bundle directory only inside its own state directory's
 * containers/, by the recorded directory's name: the path comes from the state database, which
 * must not aim a recursive removal anywhere else (`ct host rm` run as root against a directory someone else could write).
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { RuncRuntime } from '../../host/runtime/runc.js';

describe('bundle directory removal', () => {
  it('removes only containers/<name> for a recorded bundle directory elsewhere; refuses one naming none (HOST_STATE_INVALID)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-runtime-paths-'));
    const elsewhere = mkdtempSync(join(tmpdir(), 'ct-runtime-elsewhere-'));
    writeFileSync(join(elsewhere, 'precious'), 'x');
    const rt = await RuncRuntime.open({ stateDir });
    try {
      rt.store.insert({ id: 'planted', bundleDir: elsewhere, logPath: join(elsewhere, 'logs'), cgroupsPath: null, appName: null, imageDigest: null });
      expect((await rt.delete('planted', { force: true, purge: true })).status).toBe('removed');
      expect(existsSync(join(elsewhere, 'precious'))).toBe(true);
      for (const [id, bundleDir] of [['up', `${stateDir}/containers/..`], ['dot', `${stateDir}/containers/.`], ['root', '/']]) {
        rt.store.insert({ id, bundleDir, logPath: join(stateDir, 'logs'), cgroupsPath: null, appName: null, imageDigest: null });
        await expect(rt.delete(id, { force: true, purge: true })).rejects.toMatchObject({ code: 'HOST_STATE_INVALID' });
        expect(rt.store.get(id)?.status).not.toBe('removed');
      }
      expect(readdirSync(stateDir).length).toBeGreaterThan(0);
    } finally {
      rt.close();
    }
  });

  it('removes one under containers/, however the state directory was spelled (relative, through a symlink)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-runtime-paths-'));
    const link = `${stateDir}-link`;
    symlinkSync(stateDir, link);
    for (const [spelled, id] of [[relative(process.cwd(), stateDir), 'relative'], [link, 'linked']]) {
      const dir = join(stateDir, 'containers', id);
      mkdirSync(dir, { recursive: true });
      const rt = await RuncRuntime.open({ stateDir });
      rt.store.insert({ id, bundleDir: dir, logPath: join(dir, 'logs'), cgroupsPath: null, appName: null, imageDigest: null });
      rt.close();
      const other = await RuncRuntime.open({ stateDir: spelled });
      try {
        expect((await other.delete(id, { force: true, purge: true })).status).toBe('removed');
        expect(existsSync(dir)).toBe(false);
      } finally {
        other.close();
      }
    }
  });
});
