/**
 * The HTTPS server of `ct admission serve`. The API server only calls webhooks over TLS, and the
 * certificate is rotated in place (cert-manager or a Secret update swaps the mounted files): the
 * files are polled, and a new pair that loads replaces the old one for new connections; a pair
 * that does not load (half-written, mismatched) is logged and the previous one stays in force.
 * With a client CA, callers must present a certificate it signed (the API server's
 * `--admission-control-config-file` kubeconfig), before any request is read.
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { CtError } from '../../src/core/errors.js';

export interface TlsServerOptions {
  /** Address to listen on; unset: every address, IPv6 and IPv4 where the kernel has IPv6 (Node's default), else IPv4. */
  host?: string;
  port: number;
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
  /** How often the certificate files are checked (ms, default 5000). */
  reloadIntervalMs?: number;
  log?: Logger;
}

export interface RunningTlsServer {
  url: string;
  server: Server;
  /** Certificates loaded so far (1 at start, +1 per successful reload). */
  loads(): number;
  close(): Promise<void>;
}

function readPair(o: TlsServerOptions): { cert: Buffer; key: Buffer; ca?: Buffer } {
  try {
    const pair = { cert: readFileSync(o.certFile), key: readFileSync(o.keyFile), ...(o.clientCaFile ? { ca: readFileSync(o.clientCaFile) } : {}) };
    createSecureContext(pair); // throws when the key does not match or the PEM is broken
    return pair;
  } catch (e) {
    throw new CtError('IO_ERROR', `TLS certificate ${o.certFile} / key ${o.keyFile}: ${(e as Error).message}`, { cert: o.certFile }, { cause: e });
  }
}

export async function startTlsServer(o: TlsServerOptions, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<RunningTlsServer> {
  const first = readPair(o);
  let loads = 1;
  const server = createServer(
    {
      ...first,
      minVersion: 'TLSv1.2',
      ...(o.clientCaFile ? { requestCert: true, rejectUnauthorized: true } : {}),
      // A slow client cannot hold a connection open past the API server's own deadline.
      requestTimeout: 15_000,
      headersTimeout: 10_000,
    },
    handler,
  );
  server.keepAliveTimeout = 65_000;
  const reload = () => {
    try {
      server.setSecureContext({ ...readPair(o), minVersion: 'TLSv1.2' });
      loads++;
      o.log?.info({ cert: o.certFile }, 'admission TLS certificate reloaded');
    } catch (e) {
      o.log?.error({ err: (e as Error).message }, 'admission TLS certificate not reloaded: keeping the previous one');
    }
  };
  const interval = o.reloadIntervalMs ?? 5000;
  const watched = [o.certFile, o.keyFile, ...(o.clientCaFile ? [o.clientCaFile] : [])];
  // Our listener only, on close: unwatchFile(f) without it stops every watcher of the file in the
  // process (a second webhook server on the same pair, closed, left the first never reloading).
  const onChange = (cur: Stats, prev: Stats) => void (cur.mtimeMs !== prev.mtimeMs && reload());
  const unwatch = () => {
    for (const f of watched) unwatchFile(f, onChange);
  };
  for (const f of watched) watchFile(f, { interval, persistent: false }, onChange);
  await new Promise<void>((resolve, reject) => {
    const failed = (e: Error) => {
      unwatch();
      reject(e);
    };
    // Only while listening starts: a later 'error' (accept() failing on EMFILE) must not stop reloads.
    server.once('error', failed);
    const listening = () => {
      server.off('error', failed);
      resolve();
    };
    if (o.host === undefined) server.listen(o.port, listening);
    else server.listen(o.port, o.host, listening);
  });
  server.on('error', (e) => o.log?.error({ err: e.message }, 'admission TLS server error'));
  const { port, address } = server.address() as AddressInfo;
  const host = o.host ?? address;
  return {
    url: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    server,
    loads: () => loads,
    async close() {
      unwatch();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
