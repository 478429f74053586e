import { CtError } from '../../src/core/errors.js';

/** The CtError code `f` throws, or undefined when it returns; any other error fails the test. */
export function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof CtError) return e.code;
    throw e;
  }
  return undefined;
}

/** The CtError code `p` rejects with, or undefined when it resolves; any other error fails the test. */
export async function codeOfAsync(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CtError) return e.code;
    throw e;
  }
  return undefined;
}
