// The JSON helpers live in core; kept here for the bundle modules that import them by this path.
export { parseJson } from '../core/json.js';
