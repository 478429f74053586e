/**
 * Threshold groups as a user sets them with the CLI: a group on trust-store-updaters (which governs
 * store updates; its keys never sign attestations) does not fail ct verify, and a k=2 group of
 * builders is met by one `ct sign --key A --key B` (every envelope carries both signatures), not by
 * one key, nor by the same key given twice (USAGE).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCt } from '../support/cli.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { tempDir } from './ctp-fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let log: LogServer;
const p = (n: string): string => join(tmp.dir, n);

const ct = runCt;

/** The verify report's code (null when allowed) and the process exit code. */
async function verify(ctp: string, store: string): Promise<{ exit: number; code: string | null; decision: string }> {
  const r = await ct(['verify', ctp, '--trust-store', store, '--log-quorum', '1', '--json']);
  const parsed = JSON.parse(r.stdout) as unknown;
  const report = (Array.isArray(parsed) ? parsed[0] : parsed) as { decision: string; code: string | null };
  return { exit: r.code, code: report.code, decision: report.decision };
}

beforeAll(async () => {
  tmp = await tempDir('ct-thresholds-cli-');
  log = await startLogServer({ db: p('log.db'), logId: 'log-one', operator: 'Operator One' });
  for (const k of ['a', 'b', 'updater']) expect((await ct(['keygen', '--out', p(k), '--no-password'])).code).toBe(0);
  expect((await ct(['trust-store', 'init', '--id', 'th', '-o', p('base.json')])).code).toBe(0);
  for (const [k, role] of [['a', 'builders'], ['b', 'builders'], ['updater', 'trust-store-updaters']]) {
    expect((await ct(['trust-store', 'add-key', p('base.json'), '--role', role, '--key', p(`${k}.pub`), '--valid-from', '2020-01-01T00:00:00Z'])).code).toBe(0);
  }
  expect((await ct(['trust-store', 'add-log', p('base.json'), '--id', 'log-one', '--operator', log.operator, '--public-key', log.publicKey, '--url', log.url])).code).toBe(0);
  await mkdir(p('root'));
  await writeFile(p('root/hello.txt'), 'hello\n');
  expect((await ct(['pack', p('root'), '--name', 'th', '--version', '1', '-o', p('app.ctp')])).code).toBe(0);
}, 60_000);

afterAll(async () => {
  await log?.close();
  await tmp?.cleanup();
});

async function storeWith(name: string, group: string, k: number): Promise<string> {
  await copyFile(p('base.json'), p(name));
  expect((await ct(['trust-store', 'set-threshold', p(name), '--group', group, '--k', String(k)])).code).toBe(0);
  return p(name);
}

async function sign(out: string, keys: string[]): Promise<{ code: number; stderr: string }> {
  return ct(['sign', p('app.ctp'), ...keys.flatMap((k) => ['--key', p(`${k}.key`)]), '--log', `log-one=${log.url}`, '-o', p(out)]);
}

describe('threshold groups at ct verify', () => {
  it('a threshold on trust-store-updaters does not count against attestations', async () => {
    const store = await storeWith('updaters.json', 'trust-store-updaters', 1);
    expect((await sign('one.ctp', ['a'])).code).toBe(0);
    expect(await verify(p('one.ctp'), store)).toEqual({ exit: 0, code: null, decision: 'ALLOW' });
  }, 30_000);

  it('a 2-of-2 builders group is met by ct sign --key A --key B, not by one key', async () => {
    const store = await storeWith('builders2.json', 'builders', 2);
    expect((await sign('two.ctp', ['a', 'b'])).code).toBe(0);
    expect(await verify(p('two.ctp'), store)).toEqual({ exit: 0, code: null, decision: 'ALLOW' });
    expect((await sign('just-a.ctp', ['a'])).code).toBe(0);
    expect(await verify(p('just-a.ctp'), store)).toMatchObject({ code: 'THRESHOLD_NOT_MET', decision: 'REJECT' });
  }, 30_000);

  it('refuses the same key given twice', async () => {
    const r = await sign('twice.ctp', ['a', 'a']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error\[USAGE\]/);
  }, 30_000);
});
