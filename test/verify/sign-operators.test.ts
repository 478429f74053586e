/**
 * ct sign's "won't verify" warning counts as ct verify does: with the trust store known, distinct
 * operators of the logs it lists (two logs of one operator count once), not logs. Real log servers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runCt } from '../support/cli.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { tempDir } from './ctp-fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
const logs: LogServer[] = [];
const p = (n: string): string => join(tmp.dir, n);

beforeAll(async () => {
  tmp = await tempDir('ct-sign-operators-');
  for (const [id, op] of [['one-a', 'Operator One'], ['one-b', 'Operator One'], ['two', 'Operator Two']]) logs.push(await startLogServer({ db: p(`${id}.db`), logId: id, operator: op }));
  expect((await runCt(['keygen', '--out', p('k'), '--no-password'])).code).toBe(0);
  expect((await runCt(['trust-store', 'init', '--id', 'ops', '-o', p('trust.json')])).code).toBe(0);
  expect((await runCt(['trust-store', 'add-key', p('trust.json'), '--role', 'builders', '--key', p('k.pub'), '--valid-from', '2020-01-01T00:00:00Z'])).code).toBe(0);
  for (const l of logs) expect((await runCt(['trust-store', 'add-log', p('trust.json'), '--id', l.logId, '--operator', l.operator, '--public-key', l.publicKey, '--url', l.url])).code).toBe(0);
  await mkdir(p('root'));
  await writeFile(p('root/hello.txt'), 'hello\n');
  expect((await runCt(['pack', p('root'), '--name', 'ops', '--version', '1', '-o', p('app.ctp')])).code).toBe(0);
}, 60_000);

afterAll(async () => {
  for (const l of logs) await l.close();
  await tmp?.cleanup();
});

const sign = (out: string, logIds: string[]) =>
  runCt(['sign', p('app.ctp'), '--key', p('k.key'), '--trust-store', p('trust.json'), ...logIds.flatMap((id) => ['--log', `${id}=${logs.find((l) => l.logId === id)!.url}`]), '-o', p(out)]);

describe('ct sign warns as ct verify counts', () => {
  it('two logs of one operator: warned at signing, and ct verify indeed rejects', async () => {
    const r = await sign('same-op.ctp', ['one-a', 'one-b']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning: .*INSUFFICIENT_LOG_COVERAGE/m);
    const v = await runCt(['verify', p('same-op.ctp'), '--trust-store', p('trust.json')]);
    expect(v.stderr + v.stdout).toContain('INSUFFICIENT_LOG_COVERAGE');
    expect(v.code).not.toBe(0);
  }, 30_000);

  it('two operators: no warning, and ct verify allows', async () => {
    const r = await sign('two-ops.ctp', ['one-a', 'two']);
    expect(r.code).toBe(0);
    expect(r.stderr).not.toMatch(/^warning:/m);
    expect((await runCt(['verify', p('two-ops.ctp'), '--trust-store', p('trust.json')])).code).toBe(0);
  }, 30_000);
});
