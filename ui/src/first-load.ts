/**
 * The GETs every first load needs, started by boot.js (a tiny classic script in <head>) while
 * the front end itself is still downloading and evaluating: the grid waits for one round trip,
 * in parallel with the JavaScript, instead of two after it. api.ts takes each response once.
 */
export const SESSION_PATH = '/api/v1/session';
export const OVERVIEW_PATH = '/api/v1/overview?limit=100';

export type Early = Record<string, Promise<Response> | undefined>;

/** The paths the page at `hash` starts with. */
export const firstLoad = (hash: string): string[] => (/^#?\/?$/.test(hash) ? [SESSION_PATH, OVERVIEW_PATH] : [SESSION_PATH]);

export const request = (path: string): Promise<Response> => fetch(path, { headers: { accept: 'application/json' }, credentials: 'same-origin' });
