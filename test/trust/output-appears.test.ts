/**
 * `ct keygen --out` and `ct trust-store init -o` without --force: a file that appears at an output
 * name while the command writes (after its up-front "already exists" check) is refused, not
 * replaced, as `ct pack`/`ct fetch`/`ct sign --out` do (placeOutput). Before, both wrote with a
 * plain rename: the check at the start, then whatever appeared meanwhile was replaced.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/core/fs.js';
import { generateKeyPair, writeKeyPair } from '../../src/trust/keys.js';
import { saveTrustStore } from '../../src/trust/store.js';
import { newTrustStore } from '../../src/trust/edit.js';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'ct-output-appears-'));
  dirs.push(d);
  return d;
}

/** Puts `content` at `path` as soon as the first temporary of a write appears in its directory (before that write is placed). */
function appearDuring(dir: string, path: string, content: string): () => void {
  const w = watch(dir, (_e, name) => {
    if (name && /^\..*\.tmp$/.test(String(name))) {
      w.close();
      writeFileSync(path, content, { flag: 'wx' });
    }
  });
  return () => w.close();
}

describe('an output that appears while it is written', () => {
  it('writeFileAtomic with replace: false refuses a file at the name (IO_ERROR), keeps it, leaves no temporary', async () => {
    const d = tmp();
    writeFileSync(join(d, 'out'), 'mine\n');
    await expect(writeFileAtomic(join(d, 'out'), 'new\n', 0o644, { replace: false })).rejects.toMatchObject({ code: 'IO_ERROR', message: `${join(d, 'out')}: already exists (use --force to replace it)` });
    expect(readFileSync(join(d, 'out'), 'utf8')).toBe('mine\n');
    expect(readdirSync(d)).toEqual(['out']);
    await writeFileAtomic(join(d, 'fresh'), 'new\n', 0o644, { replace: false });
    expect(readFileSync(join(d, 'fresh'), 'utf8')).toBe('new\n');
    expect(readdirSync(d).sort()).toEqual(['fresh', 'out']);
  });

  it('ct keygen --out (writeKeyPair) without --force: a .pub appearing meanwhile is kept, and no half pair is left', async () => {
    const d = tmp();
    const stop = appearDuring(d, join(d, 'k.pub'), 'theirs\n');
    try {
      await expect(writeKeyPair(join(d, 'k'), generateKeyPair('ed25519'))).rejects.toMatchObject({ code: 'IO_ERROR', message: `${join(d, 'k.pub')}: already exists (use --force to replace it)` });
    } finally {
      stop();
    }
    expect(readFileSync(join(d, 'k.pub'), 'utf8')).toBe('theirs\n');
    expect(readdirSync(d)).toEqual(['k.pub']);
    // --force: replaced.
    await writeKeyPair(join(d, 'k'), generateKeyPair('ed25519'), undefined, true);
    expect(readFileSync(join(d, 'k.pub'), 'utf8')).toContain('BEGIN PUBLIC KEY');
  });

  it('ct trust-store init -o (saveTrustStore, replace: false) without --force: a store appearing meanwhile is kept', async () => {
    const d = tmp();
    const stop = appearDuring(d, join(d, 'trust.json'), 'theirs\n');
    try {
      await expect(saveTrustStore(join(d, 'trust.json'), newTrustStore('t'), { replace: false })).rejects.toMatchObject({ code: 'IO_ERROR', message: `${join(d, 'trust.json')}: already exists (use --force to replace it)` });
    } finally {
      stop();
    }
    expect(readFileSync(join(d, 'trust.json'), 'utf8')).toBe('theirs\n');
    expect(readdirSync(d)).toEqual(['trust.json']);
  });
});
