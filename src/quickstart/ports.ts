/**
 * The ports `ct quickstart`'s children (registry, deploy server) listen on. A free port is found by
 * binding port 0 and closing it, so until the child binds it any other process may take it: a
 * server of a parallel test, or one that accepts and never answers. A port kept in quickstart.json
 * for a later run may be taken in between runs too. So a child is ready only when a check that
 * only it can pass succeeds (not when anything answers on its port), and a child that could not
 * bind its port is started again on a new one.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { createServer } from 'node:net';
import { CtError } from '../core/errors.js';
import type { Child, Children } from './children.js';

/**
 * A port nothing listens on now, and none of `exclude`: the ports quickstart keeps for its other
 * children, free now only because those have not started yet (or were just stopped).
 */
export async function freePort(exclude: readonly number[] = [], pick: () => Promise<number> = unusedPort): Promise<number> {
  for (let i = 0; i < FREE_PORT_TRIES; i++) {
    const port = await pick();
    if (!exclude.includes(port)) return port;
  }
  throw new CtError('RUNTIME_FAILED', `no free port on 127.0.0.1 other than ${exclude.join(', ')} after ${FREE_PORT_TRIES} tries`, {});
}

const FREE_PORT_TRIES = 20;

async function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** How docker-registry ("bind: address already in use") and ct serve (error[PORT_IN_USE]) say it. */
const PORT_TAKEN = /address already in use|PORT_IN_USE|EADDRINUSE/;
/** Starts on a new port at most this many times in all: each try costs a child start. */
const MAX_STARTS = 3;
const LOG_READ_MAX = 64 * 1024;

export interface ListeningOptions<T> {
  /** What is awaited, for error messages ("the registry to answer"). */
  what: string;
  port: number;
  /** Ports a new one must not be: those kept for quickstart's other children. */
  avoid?: () => readonly number[];
  start(port: number): Child;
  /** Passes only when this child answers (a nonce it was given, its own log saying it bound the port). */
  ready(port: number, signal: AbortSignal, child: Child): Promise<T | undefined>;
  ms?: number;
  attemptMs?: number;
}

/** Starts the child on `port`, or on a new free port if that one is taken; its port and ready value. */
export async function startListening<T>(children: Children, o: ListeningOptions<T>): Promise<{ child: Child; port: number; value: T }> {
  let port = o.port;
  for (let start = 1; ; start++) {
    const child = o.start(port);
    try {
      const value = await children.until(child, o.what, (signal) => o.ready(port, signal, child), o.ms, o.attemptMs ?? 3000);
      return { child, port, value };
    } catch (e) {
      // Only a child that ended saying its port was taken is started again; any other failure stands.
      if (child.exitCode() === undefined || start >= MAX_STARTS || !PORT_TAKEN.test(logSince(child.logFile, child.logStart))) throw e;
      port = await freePort(o.avoid?.() ?? []);
    }
  }
}

/** What the child wrote to its log from `offset` on (its first LOG_READ_MAX bytes: a bind error, or where it listens, is said at once). */
export function logSince(file: string, offset: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const buf = Buffer.alloc(LOG_READ_MAX);
    return buf.subarray(0, readSync(fd, buf, 0, LOG_READ_MAX, offset)).toString('utf8');
  } catch {
    return '';
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
