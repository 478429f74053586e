/**
 * A durable write whose directory sync fails (EIO: the kernel could not write the directory back)
 * fails with IO_ERROR: the caller asked to know that the write survives a power loss, and that is
 * unknown. The new content stays under the name (the old one is gone already). No disk here fails
 * on demand, so the directory's handle is a stand-in whose sync fails.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const real = await import('node:fs/promises');
jest.unstable_mockModule('node:fs/promises', () => ({
  ...real,
  default: real,
  open: async (path: string, flags?: string, mode?: number): Promise<unknown> => {
    if (flags === 'r' && statSync(path).isDirectory()) {
      return { sync: () => Promise.reject(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' })), close: () => Promise.resolve() };
    }
    return real.open(path, flags, mode);
  },
}));
const { writeFileAtomic } = await import('../../src/core/fs.js');

describe('writeFileAtomic durable, directory sync failing', () => {
  it('is IO_ERROR, the new content left under the name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-durable-eio-'));
    const path = join(dir, 'rec.json');
    await writeFileAtomic(path, 'old', 0o600);
    await expect(writeFileAtomic(path, 'new', 0o600, { durable: true })).rejects.toMatchObject({ code: 'IO_ERROR', details: { path, errno: 'EIO' } });
    expect(readFileSync(path, 'utf8')).toBe('new');
  });
});
