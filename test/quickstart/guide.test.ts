/**
 * What `ct quickstart` prints once hello runs (src/quickstart/guide.ts): every line that uses
 * $CT_KEY or $CT_URL comes after one that says how to set it, so a line copied from "Where to look"
 * does not answer 401 (CT_KEY was set only further down, under "What to try next").
 */
import { describe, expect, it } from '@jest/globals';
import { guide } from '../../src/quickstart/guide.js';
import type { Layout } from '../../src/quickstart/setup.js';

describe('quickstart guide', () => {
  it('sets CT_KEY and CT_URL before any line uses them', () => {
    const dir = '/srv/ct-quickstart';
    const l = new Proxy({ dir }, { get: (t, k) => (k === 'dir' ? dir : `${dir}/${String(k)}`) }) as unknown as Layout;
    const text = guide({
      l, url: 'http://127.0.0.1:8080', dashboardLink: 'http://127.0.0.1:8080/auth/link?token=t', registryHost: '127.0.0.1:5000', hostId: 'h', container: 'c',
      deploymentId: 'd', adminKeyFile: `${dir}/quickstart.json`, reference: '127.0.0.1:5000/quickstart/hello@sha256:aa', bundleDigest: 'sha256:bb',
    });
    const lines = text.split('\n');
    for (const name of ['CT_KEY', 'CT_URL']) {
      const firstUse = lines.findIndex((x) => x.includes(`$${name}`));
      const firstSet = lines.findIndex((x) => new RegExp(`export (?:\\w+=\\S+ )*${name}=`).test(x));
      expect([name, firstUse >= 0, firstSet >= 0 && firstSet <= firstUse]).toEqual([name, true, true]);
    }
    // The key is read from the file it is in, wherever the reader's shell is.
    expect(text).toContain(`export CT_KEY=$(node -p "require('${dir}/quickstart.json').adminKey")`);
  });
});
