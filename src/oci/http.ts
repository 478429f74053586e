import type { Dispatcher } from 'undici';
import Agent from 'undici/lib/dispatcher/agent.js';
import dispatcherRequest from 'undici/lib/api/api-request.js';

/**
 * The registry client's two pieces of undici, imported by path. undici's index loads all of
 * undici (fetch, WebSocket, caches, mocks, proxies): ~130 ms of CPU before `ct fetch` or `ct push`
 * could send its first request, a tenth of a 256 MiB fetch. Agent and the request API are what
 * the index itself puts together for `undici.request` (Dispatcher.prototype.request is the same
 * function); test/oci exercises both through a real registry.
 */
export { Agent };

export type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'>;

/** `undici.request(url, { dispatcher })`: origin and path taken from the URL, as undici does. */
export function request(url: URL, dispatcher: Dispatcher, opts: RequestOptions): Promise<Dispatcher.ResponseData> {
  return dispatcherRequest.call(dispatcher, { ...opts, origin: url.origin, path: `${url.pathname}${url.search}` });
}
