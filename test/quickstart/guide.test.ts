/**
 * What `ct quickstart` prints once hello runs (src/quickstart/guide.ts): every line that uses
 * $CT_KEY or $CT_URL comes after one that says how to set it, so a line copied from "Where to look"
 * does not answer 401 (CT_KEY was set only further down, under "What to try next").
 */
import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guide } from '../../src/quickstart/guide.js';
import type { Layout } from '../../src/quickstart/setup.js';

const text = (dir: string) => {
  const l = new Proxy({ dir }, { get: (t, k) => (k === 'dir' ? dir : `${dir}/${String(k)}`) }) as unknown as Layout;
  return guide({
    l, url: 'http://127.0.0.1:8080', dashboardLink: 'http://127.0.0.1:8080/auth/link?token=t', registryHost: '127.0.0.1:5000', hostId: 'h', container: 'c',
    deploymentId: 'd', adminKeyFile: `${dir}/quickstart.json`, reference: '127.0.0.1:5000/quickstart/hello@sha256:aa', bundleDigest: 'sha256:bb',
  });
};

describe('quickstart guide', () => {
  it('sets CT_KEY and CT_URL before any line uses them', () => {
    const lines = text('/srv/ct-quickstart').split('\n');
    for (const name of ['CT_KEY', 'CT_URL']) {
      const firstUse = lines.findIndex((x) => x.includes(`$${name}`));
      const firstSet = lines.findIndex((x) => new RegExp(`export (?:\\w+=\\S+ )*${name}=`).test(x));
      expect([name, firstUse >= 0, firstSet >= 0 && firstSet <= firstUse]).toEqual([name, true, true]);
    }
  });

  // The line is copied whole into a shell: it was inside a parenthesised sentence (copied, a bash
  // syntax error) and named the file inside JavaScript in double quotes (a ' in --dir broke it, $ and
  // ` were expanded by the shell).
  it('prints a CT_KEY line that, run by bash as copied, sets the key from a directory named with \' $ ` and spaces', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'ct-guide-')), "it's $HOME `id` a b");
    mkdirSync(dir);
    const adminKey = `ctk_${'k'.repeat(32)}`;
    writeFileSync(join(dir, 'quickstart.json'), JSON.stringify({ adminKey }));
    // The first line that sets it, whole, as a reader copies it.
    const line = text(dir).split('\n').find((x) => x.includes('export CT_KEY=')) ?? '';
    expect(line).toMatch(/^ +export CT_KEY=/);
    const out = execFileSync('bash', ['-c', `${line}\nprintf %s "$CT_KEY"`], { cwd: tmpdir(), encoding: 'utf8', timeout: 10_000 });
    expect(out).toBe(adminKey);
  });
});
