/**
 * The output's temporary is written through the descriptor its O_EXCL create returned, never
 * opened again by name: in a directory another user can write, a symlink put in its place right
 * after it was made was followed, and the bundle's bytes written into the link's target (a review
 * wrote into a victim file so). Now the victim is untouched and the commit fails or renames the
 * link, which never holds the bytes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { symlinkSync, unlinkSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HashingFileSink } from '../../src/bundle/sink.js';

const VICTIM = 'ORIGINAL-VICTIM-CONTENTS-0123456789\n';

describe('HashingFileSink: its temporary swapped for a symlink', () => {
  let dir: string;
  beforeAll(async () => void (dir = await mkdtemp(join(tmpdir(), 'ct-sink-link-'))));
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  for (const withTemps of [false, true]) {
    it(`writes nothing into the link's target (${withTemps ? 'with' : 'without'} a signal handler's set)`, async () => {
      const victim = join(dir, `victim-${withTemps}.conf`);
      await writeFile(victim, VICTIM);
      const temps = withTemps ? new Set<string>() : undefined;
      const sink = new HashingFileSink(join(dir, `out-${withTemps}.ctp`), { gzip: false, durable: true, temps });
      // Another user's swap, right after the constructor returned (synchronously: before any open
      // still in flight). Before the fix, without the set the temporary did not exist yet.
      try {
        unlinkSync(sink.tmp);
      } catch {
        // Not made yet: the link takes its name all the same.
      }
      symlinkSync(victim, sink.tmp);
      // Refused or not, the bytes must not reach the victim.
      await sink.write(Buffer.from('ATTACKER-CONTROLLED')).then(() => sink.commit()).catch(() => sink.abort());
      expect(await readFile(victim, 'utf8')).toBe(VICTIM);
    });
  }
});
