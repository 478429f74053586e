/** What within() answers when the promise did not settle in time. */
export const LATE = Symbol('late');

/**
 * `p`'s value, or LATE once `ms` have passed without it (its later outcome, even a rejection,
 * is then dropped): a caller's deadline over a wait it cannot cancel (a database transaction).
 */
export function within<T>(p: Promise<T>, ms: number): Promise<T | typeof LATE> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<typeof LATE>((resolve) => {
    timer = setTimeout(() => resolve(LATE), Math.max(0, ms));
    timer.unref();
  });
  p.catch(() => undefined);
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
