/** What within() answers when the promise did not settle in time. */
export const LATE = Symbol('late');

const ignore = (): undefined => undefined;

/**
 * `p`'s value, or LATE once `ms` have passed without it (its later outcome, even a rejection,
 * is then dropped): a caller's deadline over a wait it cannot cancel (a database transaction).
 *
 * Called for every host of a fan-out: its timer and `finally` callbacks are functions of the module
 * or bound ones, not closures made per call, whose optimised code V8 drops at each major GC once
 * none of them is alive (compiled again every few deploys; docs/performance.md "Round nine: the
 * fleet"). The Promise executor is still one small closure per call (as are a few others on the
 * assignment path: assign's and nextGeneration's executors).
 */
export function within<T>(p: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, ms), LATE);
    timer.unref();
  });
  p.catch(ignore);
  return Promise.race([p, late]).finally(clearTimeout.bind(undefined, timer));
}
