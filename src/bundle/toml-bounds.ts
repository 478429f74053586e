import { CtError } from '../core/errors.js';
import type { ErrorCode } from '../core/codes.js';

/**
 * What a TOML document this project reads (manifest.toml, ct.toml) may hold. smol-toml has no
 * limits of its own, and its cost grows with the number of tables and keys (1.5 million tables
 * cost seconds and gigabytes), so the text is scanned against these limits first, in one linear
 * pass without recursion or allocation. Real manifests hold a dozen tables and under 100 keys.
 */
export const TOML_LIMITS = {
  /** Characters of the whole document. */
  chars: 256 * 1024,
  /** Table headers (`[t]`, `[[t]]`). */
  tables: 256,
  /** Key/value pairs (top level, in tables and in inline tables). */
  keys: 4096,
  /** Nesting of arrays and inline tables inside one value. */
  depth: 16,
  /** Dotted segments of one key or table header (`a.b.c` is 3). */
  keySegments: 16,
} as const;

export type TomlLimit = keyof typeof TOML_LIMITS;

/** The first limit `text` exceeds, or undefined. Strings and comments are skipped as TOML lexes them. */
export function tomlLimitExceeded(text: string, limits: typeof TOML_LIMITS = TOML_LIMITS): { limit: TomlLimit; line: number } | undefined {
  if (text.length > limits.chars) return { limit: 'chars', line: 0 };
  let tables = 0;
  let keys = 0;
  let line = 1;
  // Open arrays ('[') and inline tables ('{') of the current value, innermost last, as a bit
  // string (1 = inline table): the depth limit keeps it within a small integer range.
  let depth = 0;
  let inlineBits = 0;
  let keyMode = true; // reading a key (start of line, after '{' or ',' in an inline table)
  let header = false; // inside a [table] header
  let segments = 1;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) {
      line++;
      if (depth === 0) {
        keyMode = true;
        header = false;
        segments = 1;
      }
      continue;
    }
    if (c === 0x23) {
      // comment: to the end of the line
      const nl = text.indexOf('\n', i);
      i = (nl === -1 ? n : nl) - 1;
      continue;
    }
    if (c === 0x22 || c === 0x27) {
      const triple = text.charCodeAt(i + 1) === c && text.charCodeAt(i + 2) === c;
      const end = skipString(text, i, c, triple);
      for (let k = i; k < end; k++) if (text.charCodeAt(k) === 0x0a) line++;
      i = end - 1;
      continue;
    }
    if (header) {
      if (c === 0x2e && ++segments > limits.keySegments) return { limit: 'keySegments', line };
      if (c === 0x5d) header = text.charCodeAt(i + 1) === 0x5d; // "]]" ends on the second bracket
      continue;
    }
    if (keyMode && depth === 0 && c === 0x5b) {
      if (++tables > limits.tables) return { limit: 'tables', line };
      header = true;
      segments = 1;
      if (text.charCodeAt(i + 1) === 0x5b) i++;
      continue;
    }
    if (keyMode) {
      if (c === 0x2e && ++segments > limits.keySegments) return { limit: 'keySegments', line };
      if (c === 0x3d) {
        if (++keys > limits.keys) return { limit: 'keys', line };
        keyMode = false;
        segments = 1;
      } else if (c === 0x7d && depth > 0 && (inlineBits & 1) === 1) {
        depth--; // "{}" or a trailing "}" after a comma
        inlineBits >>>= 1;
      }
      continue;
    }
    // value
    if (c === 0x5b || c === 0x7b) {
      if (++depth > limits.depth) return { limit: 'depth', line };
      inlineBits = (inlineBits << 1) | (c === 0x7b ? 1 : 0);
      if (c === 0x7b) {
        keyMode = true;
        segments = 1;
      }
    } else if ((c === 0x5d || c === 0x7d) && depth > 0) {
      depth--;
      inlineBits >>>= 1;
    } else if (c === 0x2c && depth > 0 && (inlineBits & 1) === 1) {
      keyMode = true;
      segments = 1;
    }
  }
  return undefined;
}

/** Index just past the string starting at `i` (or the end of the text when it never closes). */
function skipString(text: string, i: number, quote: number, triple: boolean): number {
  const basic = quote === 0x22;
  let k = i + (triple ? 3 : 1);
  while (k < text.length) {
    const c = text.charCodeAt(k);
    if (basic && c === 0x5c) {
      k += 2;
      continue;
    }
    if (c === quote) {
      if (!triple) return k + 1;
      if (text.charCodeAt(k + 1) === quote && text.charCodeAt(k + 2) === quote) {
        // up to two more quotes may belong to the string ("""a""""" ends with two quotes inside)
        let end = k + 3;
        while (end < text.length && end < k + 5 && text.charCodeAt(end) === quote) end++;
        return end;
      }
    } else if (!triple && c === 0x0a) return k; // unterminated: the parser reports it
    k++;
  }
  return k;
}

/** Refuses a TOML text beyond TOML_LIMITS with the input's own code (details.limit, details.where). */
export function assertTomlBounds(text: string, where: string, code: ErrorCode): void {
  const over = tomlLimitExceeded(text);
  if (!over) return;
  const max = TOML_LIMITS[over.limit];
  const what: Record<TomlLimit, string> = {
    chars: `longer than ${max} characters`,
    tables: `more than ${max} tables`,
    keys: `more than ${max} keys`,
    depth: `values nested deeper than ${max} levels`,
    keySegments: `a key or table name with more than ${max} dotted parts`,
  };
  throw new CtError(code, `${where}: ${what[over.limit]}${over.line ? ` (at line ${over.line})` : ''}; refused before parsing`, { where, limit: `toml.${over.limit}`, max, ...(over.line ? { line: over.line } : {}) });
}
