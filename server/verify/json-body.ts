import { assertJsonDepth } from '../../src/core/json.js';

/** The error express.json gives for a body that is not JSON: the error handler answers JSON_INVALID. */
function notJson(): Error {
  return Object.assign(new SyntaxError('request body is not valid JSON'), { type: 'entity.parse.failed', status: 400, expose: true });
}

/** JSON's insignificant whitespace: space, tab, line feed, carriage return. */
const SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

function firstSignificant(text: string): string | undefined {
  for (let i = 0; i < text.length; i++) if (!SPACE.has(text.charCodeAt(i))) return text[i];
  return undefined;
}

/**
 * A UTF-8 JSON request body parsed exactly as the app's `express.json({strict: true, verify})`
 * does (server/app.ts): the depth check on the raw bytes first, a leading BOM dropped, an empty
 * body is `{}`, only an object or array at the top. test/server/verify-hot-path.test.ts sends the
 * same bytes both ways and compares the answers.
 */
export function parseJsonBody(bytes: Buffer): unknown {
  assertJsonDepth(bytes, 'request body', 'JSON_INVALID');
  let text = bytes.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.length === 0) return {};
  const first = firstSignificant(text);
  if (first !== '{' && first !== '[') throw notJson();
  try {
    return JSON.parse(text);
  } catch {
    throw notJson();
  }
}
