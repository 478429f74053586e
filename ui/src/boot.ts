import { firstLoad, request, type Early } from './first-load.js';

// Runs before the module bundle: see first-load.ts.
const early: Early = {};
for (const path of firstLoad(location.hash)) {
  const p = request(path);
  p.catch(() => undefined); // judged by whoever takes it
  early[path] = p;
}
(window as unknown as { ctEarly: Early }).ctEarly = early;
// Never served late: what the first page did not take is dropped.
setTimeout(() => Object.keys(early).forEach((k) => delete early[k]), 10_000);
