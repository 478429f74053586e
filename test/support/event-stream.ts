import { expect } from '@jest/globals';

/** A text/event-stream response read as it comes (the API's events and log follows). */
export interface EventStream {
  text(): string;
  /** 'ended' when the server closed the stream, 'open' if it was still open after `ms`. */
  ended(ms: number): Promise<'ended' | 'open'>;
  abort(): void;
}

/** Opens `url` with `headers`, expects 200, and collects the body's text until it ends or is aborted. */
export async function openEventStream(url: string, headers: Record<string, string>): Promise<EventStream> {
  const abort = new AbortController();
  const res = await fetch(url, { headers, signal: abort.signal });
  expect(res.status).toBe(200);
  let text = '';
  const done = (async () => {
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString('utf8');
    } catch {
      // aborted by the test
    }
  })();
  return {
    text: () => text,
    ended: (ms) => {
      let timer: NodeJS.Timeout | undefined;
      const wait = new Promise<'open'>((r) => (timer = setTimeout(() => r('open'), ms)));
      return Promise.race([done.then(() => 'ended' as const), wait]).finally(() => clearTimeout(timer));
    },
    abort: () => abort.abort(),
  };
}
