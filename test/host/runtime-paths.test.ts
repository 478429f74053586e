/**
 * The runtime acts only on the paths it derives for a container under its own state directory
 * (containers/<runc id>, its logs, /cerro-torre/<name>): the recorded ones come from the state
 * database, which must not aim a recursive removal, runc's bundle, the log writer or a cgroup's
 * creation and removal anywhere else (`ct host rm` run as root against a database someone altered).
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { RuncRuntime } from '../../host/runtime/runc.js';

describe('bundle directory removal', () => {
  it('refuses a container whose recorded paths are not the ones a runtime writes (HOST_STATE_INVALID): nothing outside is removed, nothing is done', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-runtime-paths-'));
    const elsewhere = mkdtempSync(join(tmpdir(), 'ct-runtime-elsewhere-'));
    writeFileSync(join(elsewhere, 'precious'), 'x');
    const rt = await RuncRuntime.open({ stateDir });
    const unified = mkdtempSync(join(tmpdir(), 'ct-runtime-cgroupfs-'));
    mkdirSync(join(unified, 'system.slice'));
    const withCgroups = await RuncRuntime.open({ stateDir, unifiedCgroupMount: unified });
    const good = (id: string) => ({ id, bundleDir: join(stateDir, 'containers', id), logPath: join(stateDir, 'containers', id, 'logs'), cgroupsPath: `/cerro-torre/${id}`, appName: null, imageDigest: null });
    // What someone who can write state.db records (the runtime itself refuses to write such a row).
    const plant = (row: ReturnType<typeof good>) => {
      rt.store.insert(good(row.id));
      const db = new Database(join(stateDir, 'state.db'));
      db.prepare('UPDATE containers SET bundle_dir = ?, log_path = ?, cgroups_path = ? WHERE id = ?').run(row.bundleDir, row.logPath, row.cgroupsPath, row.id);
      db.close();
    };
    const planted = [
      { ...good('elsewhere'), bundleDir: elsewhere, logPath: join(elsewhere, 'logs') },
      { ...good('up'), bundleDir: `${stateDir}/containers/..`, logPath: `${stateDir}/logs` },
      { ...good('dot'), bundleDir: `${stateDir}/containers/.`, logPath: `${stateDir}/containers/logs` },
      { ...good('root'), bundleDir: '/', logPath: '/logs' },
      { ...good('logs'), logPath: join(elsewhere, 'logs') },
      { ...good('logname'), logPath: join(stateDir, 'containers', 'logname', 'exit.json') },
      { ...good('cgup'), cgroupsPath: '/cerro-torre/../system.slice' },
      { ...good('cgother'), cgroupsPath: '/system.slice' },
      { ...good('cgdeep'), cgroupsPath: '/cerro-torre/a/b' },
    ];
    try {
      for (const row of planted) {
        expect(() => rt.store.insert(row)).toThrow(expect.objectContaining({ code: 'HOST_STATE_INVALID' }));
        expect(rt.store.get(row.id)).toBeUndefined();
        plant(row);
        for (const act of [() => rt.delete(row.id, { force: true, purge: true }), () => withCgroups.delete(row.id, { force: true, purge: true }), () => rt.logs(row.id), () => rt.state(row.id), () => rt.start(row.id)]) {
          await expect(act()).rejects.toMatchObject({ code: 'HOST_STATE_INVALID', message: expect.stringContaining('nothing was done') });
        }
        rt.store.forget(row.id);
      }
      expect(existsSync(join(elsewhere, 'precious'))).toBe(true);
      expect(existsSync(join(unified, 'system.slice'))).toBe(true);
      expect(readdirSync(stateDir).sort()).toEqual(expect.arrayContaining(['containers', 'runc', 'state.db']));
      // The same rows, written as a runtime writes them, are removed as usual.
      for (const row of planted) {
        rt.store.insert(good(row.id));
        expect((await rt.delete(row.id, { force: true, purge: true })).status).toBe('removed');
      }
      // A bad row stops listing too: the agent does not start on a database it did not write.
      plant({ ...good('later'), bundleDir: elsewhere });
      expect(() => rt.store.list()).toThrow(expect.objectContaining({ code: 'HOST_STATE_INVALID' }));
    } finally {
      rt.close();
      withCgroups.close();
    }
  });

  it('refuses to create a container whose cgroup is not one of its own under /cerro-torre (USAGE)', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-runtime-paths-'));
    const rt = await RuncRuntime.open({ stateDir });
    try {
      for (const cgroupsPath of ['/cerro-torre/..', '/cerro-torre/../x', '/', '/cerro-torre/a/b', 'cerro-torre/a']) {
        await expect(rt.create('c1', { ociVersion: '1.0.2', root: { path: '/nonexistent' }, process: { args: ['/bin/true'], cwd: '/' }, linux: { cgroupsPath } } as never)).rejects.toMatchObject({ code: 'USAGE' });
        expect(rt.store.get('c1')).toBeUndefined();
      }
      // A removed container of that id is left as it was (its row, its directory): checked first.
      await rt.create('c2', { ociVersion: '1.0.2', root: { path: '/nonexistent' }, process: { args: ['/bin/true'], cwd: '/' }, linux: {} } as never);
      await rt.delete('c2');
      await expect(rt.create('c2', { ociVersion: '1.0.2', root: { path: '/nonexistent' }, process: { args: ['/bin/true'], cwd: '/' }, linux: { cgroupsPath: '/x/../y' } } as never)).rejects.toMatchObject({ code: 'USAGE' });
      expect(rt.store.get('c2')?.status).toBe('removed');
      expect(existsSync(join(stateDir, 'containers', 'c2', 'config.json'))).toBe(true);
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

  it('names each container\'s cgroup after its id and its state directory: the same id elsewhere has another, the same directory however spelled the same', async () => {
    const a = mkdtempSync(join(tmpdir(), 'ct-runtime-scope-'));
    const b = mkdtempSync(join(tmpdir(), 'ct-runtime-scope-'));
    symlinkSync(a, `${a}-link`);
    const [ra, rb, rlink] = await Promise.all([RuncRuntime.open({ stateDir: a }), RuncRuntime.open({ stateDir: b }), RuncRuntime.open({ stateDir: relative(process.cwd(), `${a}-link`) })]);
    try {
      expect(ra.cgroupsPathFor('web')).toMatch(/^\/cerro-torre\/web-[0-9a-f]{8}$/);
      expect(rb.cgroupsPathFor('web')).not.toBe(ra.cgroupsPathFor('web'));
      expect(rlink.cgroupsPathFor('web')).toBe(ra.cgroupsPathFor('web'));
      // The longest container id still makes a cgroup the runtime accepts.
      const long = `a${'b'.repeat(63)}`;
      const rec = await ra.create(long, { ociVersion: '1.0.2', root: { path: '/nonexistent' }, process: { args: ['/bin/true'], cwd: '/' }, linux: { cgroupsPath: ra.cgroupsPathFor(long) } } as never);
      expect(rec.cgroupsPath).toBe(`/cerro-torre/${long}-${ra.scope}`);
      expect(ra.store.get(long)?.cgroupsPath).toBe(rec.cgroupsPath);
    } finally {
      for (const r of [ra, rb, rlink]) r.close();
      for (const d of [a, b, `${a}-link`]) rmSync(d, { recursive: true, force: true });
    }
  });
});
