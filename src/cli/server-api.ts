/**
 * The deploy server's API from a terminal (`ct mcp --server`, `ct api-key`): one check of the URL
 * and the credential, and the MCP tools' client (bounded answers, timeouts, no redirects) with its
 * failures as CtErrors.
 */
import { CtError } from '../core/errors.js';
import { ApiClient } from '../mcp/api-client.js';
import { ToolError } from '../mcp/tool.js';
import { terminalText } from '../core/terminal.js';

const LOCAL = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** `--server` as a URL: https, or http for a server on this machine only (the credential crosses it). */
export function serverUrl(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new CtError('USAGE', `--server must be a URL, got ${JSON.stringify(server.slice(0, 200))}`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOCAL.has(url.hostname))) throw new CtError('USAGE', '--server must use https (http only for a server on this machine)');
  if (url.username || url.password) throw new CtError('USAGE', '--server must not carry credentials: put the token in the variable --token-env names');
  return url;
}

/** A credential's length at most: API keys and OIDC tokens are far shorter; a header is bounded. */
const MAX_TOKEN_CHARS = 16 * 1024;

/**
 * The credential in `$tokenEnv`; read from the environment so that it stays out of `ps` and shell
 * history. Visible ASCII only, as API keys and JWTs are: fetch refuses another header value with an
 * error quoting the whole value, and a newline pasted into the variable printed the token. Never
 * quoted here either.
 */
export function serverToken(tokenEnv: string): string {
  const token = process.env[tokenEnv];
  if (!token) throw new CtError('USAGE', `--server needs a credential in $${tokenEnv}`);
  if (token.length > MAX_TOKEN_CHARS || !/^[\x21-\x7e]+$/.test(token)) {
    throw new CtError('USAGE', `$${tokenEnv} is not a credential: it must be visible ASCII characters only (no spaces, newlines or other characters), at most ${MAX_TOKEN_CHARS}; set it again`, { variable: tokenEnv });
  }
  return token;
}

/** A call's failure as the CLI reports it: the server's own code kept in details. */
export async function callServer<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    if (!(e instanceof ToolError)) throw e;
    if (['SERVER_UNAVAILABLE', 'BAD_RESPONSE', 'RESPONSE_TOO_LARGE'].includes(e.code)) throw new CtError('SERVER_UNAVAILABLE', e.message, { cause: e.code });
    throw new CtError('SERVER_REFUSED', `the deploy server refused: ${e.code}: ${e.message}`, { serverCode: e.code });
  }
}

export function serverClient(server: string, tokenEnv: string): ApiClient {
  return new ApiClient(serverUrl(server).href, serverToken(tokenEnv));
}

/** Columns padded to their widest cell; names and ids are the server's: what a terminal would act on is shown escaped. */
export function table(rows: string[][]): string {
  const clean = rows.map((r) => r.map((c) => terminalText(c.replace(/[\t\n]/g, ' '))));
  const widths = clean[0].map((_, i) => Math.max(...clean.map((r) => r[i].length)));
  return clean.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n') + '\n';
}
