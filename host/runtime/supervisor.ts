/**
 * The per-container supervisor: a small detached process (own session) that runs `runc run` in the
 * foreground, so that runc stays the container's subreaper and returns its exit status. The
 * container's stdout/stderr go to the log file; the exit status is written atomically to the exit
 * file. The agent may die (even kill -9) meanwhile: the container keeps running and the exit code
 * is recovered from the file (runc.ts recover()).
 *
 * Usage (by runc.ts only): node supervisor.js '<json SupervisorArgs>'
 */
import { spawn } from 'node:child_process';
import { openSync } from 'node:fs';
import { writeFileAtomic } from '../../src/core/fs.js';

export interface SupervisorArgs {
  runc: string;
  root: string;
  bundle: string;
  id: string;
  log: string;
  /** runc's own log (JSON lines), kept apart from the container's output. */
  runcLog: string;
  exitFile: string;
}

export interface ExitRecord {
  exitCode: number | null;
  signal: string | null;
  finishedAt: string;
  /** runc itself failed to start the container (its error is in the log). */
  runcError?: string;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as SupervisorArgs;
  const log = openSync(args.log, 'a', 0o640);
  const child = spawn(args.runc, ['--root', args.root, '--log', args.runcLog, '--log-format', 'json', 'run', '--bundle', args.bundle, args.id], {
    stdio: ['ignore', log, log],
    cwd: args.bundle,
  });
  // runc run forwards the signals it gets to the container; pass ours on rather than dying alone.
  for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const) process.on(sig, () => child.kill(sig));
  process.on('SIGHUP', () => {});
  const result = await new Promise<ExitRecord>((resolve) => {
    child.on('error', (e) => resolve({ exitCode: null, signal: null, finishedAt: new Date().toISOString(), runcError: e.message }));
    child.on('close', (code, signal) => resolve({ exitCode: code, signal, finishedAt: new Date().toISOString() }));
  });
  await writeFileAtomic(args.exitFile, `${JSON.stringify(result)}\n`);
}

await main();
