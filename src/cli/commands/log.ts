import type { Command } from 'commander';
import { CtError } from '../../core/errors.js';
import { timeoutOption } from '../../core/timeout-option.js';
import { publicKeyFrom } from '../../trust/keyid.js';
import { verifyCheckpoint } from '../../tlog/checkpoint.js';
import { fetchCheckpoint, fetchConsistencyProof, submitToLogs } from '../../tlog/client.js';
import { JsonFileCheckpointMemory } from '../../tlog/memory-json.js';
import { startLogServer } from '../../tlog/server.js';
import { checkLogConsistency } from '../../tlog/witness.js';
import { action, processIo } from '../io.js';
import { readJsonFile } from '../../core/json.js';



function port(v: string): number {
  const n = Number(v);
  if (!/^[0-9]{1,5}$/.test(v) || n > 65535) throw new CtError('USAGE', `--port: not a TCP port: ${v}`);
  return n;
}

export function register(program: Command): void {
  const log = program.command('log').description('VCS transparency log (SPEC §6)');
  log
    .command('serve')
    .description('run a transparency log over HTTP; prints {url, logId, publicKey, operator} as one JSON line once listening')
    .requiredOption('--db <file>', 'SQLite database of the log (created if missing)')
    .option('--port <port>', 'TCP port (0 picks a free one)', '0')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .option('--key <file>', 'Ed25519 private key (PKCS#8 PEM); default: generated on first start and kept in the db')
    .option('--log-id <id>', 'log id (the key of the log in trust stores)')
    .option('--origin <name>', 'checkpoint origin line and note key name (default: the log id)')
    .option('--operator <name>', 'operator name reported for trust stores (default: the log id)')
    .option('--max-body <bytes>', 'largest accepted request body', '65536')
    .action(
      action(async (opts: { db: string; port: string; host: string; key?: string; logId?: string; origin?: string; operator?: string; maxBody: string }) => {
        const maxBody = Number(opts.maxBody);
        if (!Number.isSafeInteger(maxBody) || maxBody < 1) throw new CtError('USAGE', `--max-body: not a positive integer: ${opts.maxBody}`);
        const server = await startLogServer({
          db: opts.db,
          port: port(opts.port),
          host: opts.host,
          keyFile: opts.key,
          logId: opts.logId,
          origin: opts.origin,
          operator: opts.operator,
          maxBodyBytes: maxBody,
        });
        processIo.out(JSON.stringify({ url: server.url, logId: server.logId, publicKey: server.publicKey, operator: server.operator, origin: server.origin }));
        // Serve until asked to stop; closing the server and the db lets the process end by itself.
        await new Promise<void>((resolve) => {
          const stop = (): void => {
            process.off('SIGINT', stop);
            process.off('SIGTERM', stop);
            void server.close().then(resolve);
          };
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
        });
      }),
    );

  log
    .command('submit')
    .description('append an entry (JSON file; timestamp optional) to a log; prints the bundle log record')
    .requiredOption('--url <url>', 'log base URL')
    .requiredOption('--entry <file>', 'entry JSON')
    .option('--log-id <id>', 'log id to put in the record (trust-store key)', 'log')
    .option('--public-key <spki>', 'log key (base64 SPKI or PEM); the record is verified with it')
    .option('--timeout <ms>', 'per-attempt timeout', '10000')
    .action(
      action(async (opts: { url: string; entry: string; logId: string; publicKey?: string; timeout: string }) => {
        const entry = (await readJsonFile(opts.entry)) as Parameters<typeof submitToLogs>[0];
        const [r] = await submitToLogs(entry, [{ id: opts.logId, url: opts.url, publicKey: opts.publicKey }], { timeoutMs: timeoutOption(opts.timeout) });
        if (!r.ok) throw new CtError(r.code, `${opts.url}: ${r.message}`, { url: opts.url, status: r.status });
        processIo.out(JSON.stringify({ record: r.record, entry: r.entry }));
      }),
    );

  log
    .command('check')
    .description("verify a log's signed checkpoint and, with --memory, that it is consistent with the last one seen (fork detection)")
    .requiredOption('--url <url>', 'log base URL')
    .requiredOption('--public-key <spki>', 'log key (base64 SPKI or PEM)')
    .requiredOption('--origin <name>', 'expected checkpoint origin (also the note key name)')
    .option('--log-id <id>', 'name of the log in the memory file (default: the origin)')
    .option('--memory <file>', 'JSON file remembering the last verified checkpoint of each log')
    .option('--timeout <ms>', 'per-attempt timeout', '10000')
    .action(
      action(async (opts: { url: string; publicKey: string; origin: string; logId?: string; memory?: string; timeout: string }) => {
        const key = publicKeyFrom(opts.publicKey, '--public-key');
        const req = { timeoutMs: timeoutOption(opts.timeout) };
        const cp = verifyCheckpoint(await fetchCheckpoint(opts.url, req), opts.origin, key, opts.origin);
        const logId = opts.logId ?? opts.origin;
        let status = 'verified';
        if (opts.memory) {
          const r = await checkLogConsistency(new JsonFileCheckpointMemory(opts.memory), logId, cp, (a, b) => fetchConsistencyProof(opts.url, a, b, req));
          if (!r.ok) throw new CtError(r.code, r.message, { logId, remembered: r.remembered, treeSize: cp.treeSize, rootHash: cp.rootHash.toString('hex') });
          status = r.status;
        }
        processIo.out(JSON.stringify({ logId, origin: cp.origin, treeSize: cp.treeSize, rootHash: cp.rootHash.toString('hex'), status }));
      }),
    );
}
