/**
 * The dashboard's event stream (ui/src/live.ts) opens again after the server refused it (429
 * EVENT_STREAM_LIMIT) or answered otherwise than 200: EventSource itself gives up for good then.
 * Run in node with a stand-in EventSource (the browser's is what the dashboard test drives).
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';

class FakeSource {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  static made: FakeSource[] = [];
  readyState = FakeSource.CONNECTING;
  closed = false;
  onopen: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeSource.made.push(this);
  }
  addEventListener(): void {}
  close(): void {
    this.closed = true;
    this.readyState = FakeSource.CLOSED;
  }
  /** What a browser does with a 429: the source is CLOSED, then error fires. */
  refuse(): void {
    this.readyState = FakeSource.CLOSED;
    this.onerror?.();
  }
}

type Live = { startLive(): void; stopLive(): void; retryDelay(n: number, random?: () => number): number };

describe('dashboard live stream: reconnects after a refusal', () => {
  let live: Live;
  beforeAll(async () => {
    (globalThis as { EventSource?: unknown }).EventSource = FakeSource;
    jest.useFakeTimers();
    // A path in a variable: the root type check (no DOM) does not follow it into the UI's sources.
    const path = '../../ui/src/live.js';
    live = (await import(path)) as Live;
  });
  afterAll(() => {
    jest.useRealTimers();
    delete (globalThis as { EventSource?: unknown }).EventSource;
  });

  it('waits 1 s doubling to at most 60 s, jittered, and starts over once a stream opens', () => {
    expect(live.retryDelay(0, () => 0)).toBe(500);
    expect(live.retryDelay(0, () => 1)).toBe(1_000);
    expect(live.retryDelay(3, () => 1)).toBe(8_000);
    expect(live.retryDelay(1_000, () => 1)).toBe(60_000);
    expect(live.retryDelay(1_000, () => 0)).toBe(30_000);

    live.startLive();
    expect(FakeSource.made).toHaveLength(1);
    FakeSource.made[0].refuse();
    expect(FakeSource.made[0].closed).toBe(true);
    // Not at once: after the first wait (at most 1 s).
    expect(FakeSource.made).toHaveLength(1);
    jest.advanceTimersByTime(1_000);
    expect(FakeSource.made).toHaveLength(2);
    FakeSource.made[1].refuse();
    jest.advanceTimersByTime(2_000);
    expect(FakeSource.made).toHaveLength(3);
    // A dropped stream EventSource retries itself (CONNECTING): no second source.
    FakeSource.made[2].onerror?.();
    jest.advanceTimersByTime(120_000);
    expect(FakeSource.made).toHaveLength(3);
    // Refused ten times in a row: never more than a minute apart.
    for (let i = 0; i < 10; i++) {
      FakeSource.made.at(-1)!.refuse();
      jest.advanceTimersByTime(60_000);
    }
    expect(FakeSource.made).toHaveLength(13);
    // Opened: the next refusal waits a second again.
    FakeSource.made.at(-1)!.onopen?.();
    FakeSource.made.at(-1)!.refuse();
    jest.advanceTimersByTime(1_000);
    expect(FakeSource.made).toHaveLength(14);
  });

  it('stops retrying when the dashboard stops the stream (signed out)', () => {
    FakeSource.made.at(-1)!.refuse();
    const n = FakeSource.made.length;
    live.stopLive();
    jest.advanceTimersByTime(120_000);
    expect(FakeSource.made).toHaveLength(n);
    live.startLive();
    expect(FakeSource.made).toHaveLength(n + 1);
  });
});
