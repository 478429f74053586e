import type { Command } from 'commander';
import { CtError } from '../../core/errors.js';
import { startLogServer } from '../../tlog/server.js';
import { action, processIo } from '../io.js';

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
}
