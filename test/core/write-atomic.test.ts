import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/core/fs.js';

describe('writeFileAtomic', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ct-atomic-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates missing directories only when needed, and writes every byte with the mode asked', async () => {
    const path = join(dir, 'a', 'b', 'rec.json');
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 0x5a);
    await writeFileAtomic(path, big, 0o600);
    expect(readFileSync(path).equals(big)).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // Rewritten in place (the directory exists): the new bytes, no temporary left beside them.
    await writeFileAtomic(path, '{"generation":2}');
    expect(readFileSync(path, 'utf8')).toBe('{"generation":2}');
    expect(readdirSync(join(dir, 'a', 'b'))).toEqual(['rec.json']);
  });

  it('fails with IO_ERROR under a parent that is a file, leaving nothing behind', async () => {
    writeFileSync(join(dir, 'plain'), 'x');
    await expect(writeFileAtomic(join(dir, 'plain', 'rec.json'), 'y')).rejects.toMatchObject({ code: 'IO_ERROR' });
    expect(readFileSync(join(dir, 'plain'), 'utf8')).toBe('x');
  });
});
