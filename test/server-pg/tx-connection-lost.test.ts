/**
 * A PostgreSQL connection lost between two queries of a transaction (the server restarting, a
 * session it ends) fails that transaction, and only it: the checked-out client had no 'error'
 * listener, so node-postgres's 'error' event was unhandled and the server process exited. Run in a
 * process of its own (the built store), whose exit is what is judged.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { repoRoot } from '../support/cli.js';
import { startPostgres, type Postgres } from '../support/postgres.js';

const script = (dbModule: string) => `
const { openDb } = await import(${JSON.stringify(dbModule)});
const db = await openDb({ databaseUrl: process.argv[1] });
const outcome = await db.tx(async (t) => {
  const [{ pid }] = await t.query('SELECT pg_backend_pid() AS pid');
  // Ended from another connection while this transaction is idle between queries.
  await db.query('SELECT pg_terminate_backend(?)', [pid]);
  await new Promise((r) => setTimeout(r, 300));
  return t.query('SELECT 1 AS one');
}).then(() => 'committed', () => 'failed');
// The pool still answers: the broken client was not given back to it.
let answers = 0;
for (let i = 0; i < 12; i++) answers += (await db.query('SELECT 1 AS one'))[0].one;
await db.close();
console.log(JSON.stringify({ outcome, answers }));
`;

describe('a transaction whose connection is lost', () => {
  let pg: Postgres;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
  });

  it('fails that transaction; the process lives on and the pool works', async () => {
    const dbModule = pathToFileURL(join(repoRoot, 'build', 'server', 'store', 'db.js')).href;
    const run = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script(dbModule), pg.url], { timeout: 20_000 })
      .then((r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }), (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }));
    expect({ code: run.code, unhandled: /Unhandled 'error' event|Unhandled error/.test(run.stderr) }).toEqual({ code: 0, unhandled: false });
    expect(JSON.parse(run.stdout.trim())).toEqual({ outcome: 'failed', answers: 12 });
  }, 30_000);
});
