/**
 * Reads a policy or suite document (YAML or JSON) keeping node positions, so that every error
 * (YAML syntax, schema, meaning) can point at file:line:column. JSON is parsed by the `yaml`
 * parser too (JSON is YAML 1.2), which also rejects duplicate keys that JSON.parse would silently
 * resolve to the last one.
 */
import { isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type ErrorCode as YamlErrorCode, type Node } from 'yaml';
import type { SourceLocation } from './types.js';
import type { PolicyIssue } from './issues.js';
import { boundText } from '../core/errors.js';

import { MAX_POLICY_FILE_BYTES, tooLargeIssue } from './read-sources.js';

export { MAX_POLICY_FILE_BYTES };

export type PathSegment = string | number;

export interface ParsedSource {
  file: string;
  value: unknown;
  /** Location of the node at `path`, or of its nearest existing ancestor. */
  locate(path: readonly PathSegment[]): SourceLocation;
  /** Location of the key `key` of the map at `path` (for unknown-field errors). */
  locateKey(path: readonly PathSegment[], key: string): SourceLocation;
}

/** Characters of a parse message at most (the parser's messages end with a token of the text, which can be any length). */
const MAX_MESSAGE = 200;

export interface ParseOptions {
  /**
   * false for files whose text must not reach a report (fixtures named by a pull request's test
   * cases, a deployments export: a link to a credentials file would otherwise be quoted into the PR
   * comment): the message is a fixed text per parser code, never the parser's own, which quotes
   * tokens of the text in many shapes (`Unsupported YAML version <token>`, `Unresolved tag: !…`).
   */
  quoteText?: boolean;
}

/** The yaml parser's error codes (yaml's ErrorCode), each with a message that quotes nothing. */
const FIXED_MESSAGE: Record<YamlErrorCode, string> = {
  ALIAS_PROPS: 'an alias cannot have an anchor or a tag',
  BAD_ALIAS: 'an alias to an anchor that is not defined before it',
  BAD_DIRECTIVE: 'a directive that is not valid or not supported',
  BAD_DQ_ESCAPE: 'an escape that is not valid in a double-quoted string',
  BAD_INDENT: 'bad indentation',
  BAD_PROP_ORDER: 'an anchor or a tag in the wrong place',
  BAD_SCALAR_START: 'a plain value cannot start with this character',
  BLOCK_AS_IMPLICIT_KEY: 'a block collection as an implicit key',
  BLOCK_IN_FLOW: 'a block collection inside a flow collection',
  DUPLICATE_KEY: 'a duplicate key',
  IMPOSSIBLE: 'a parser error',
  KEY_OVER_1024_CHARS: 'an implicit key longer than 1024 characters',
  MISSING_CHAR: 'a closing character is missing',
  MULTILINE_IMPLICIT_KEY: 'an implicit key over several lines',
  MULTIPLE_ANCHORS: 'more than one anchor on a node',
  MULTIPLE_DOCS: 'more than one document',
  MULTIPLE_TAGS: 'more than one tag on a node',
  NON_STRING_KEY: 'a key that is not a string',
  RESOURCE_EXHAUSTION: 'too many aliases',
  TAB_AS_INDENT: 'a tab as indentation',
  TAG_RESOLVE_FAILED: 'a tag that cannot be resolved',
  UNEXPECTED_TOKEN: 'unexpected token',
  BAD_COLLECTION_TYPE: 'a collection of the wrong type for its tag',
};

function parseMessage(message: string, code: string | undefined, quoteText: boolean): string {
  if (!quoteText) {
    const fixed = code && Object.hasOwn(FIXED_MESSAGE, code) ? FIXED_MESSAGE[code as YamlErrorCode] : 'the document cannot be read';
    return code ? `${fixed} [${code}]` : fixed;
  }
  const first = message.split('\n')[0];
  return boundText(first, MAX_MESSAGE);
}

export function parseSource(file: string, text: string, opts: ParseOptions = {}): { source?: ParsedSource; issues: PolicyIssue[] } {
  const quoteText = opts.quoteText ?? true;
  const lineCounter = new LineCounter();
  const at = (offset: number): SourceLocation => {
    const p = lineCounter.linePos(offset);
    return { file, line: p.line, column: p.col };
  };
  // Bytes, as the message says (UTF-8 never has fewer bytes than UTF-16 units, so short texts are not encoded to count).
  if (text.length * 3 > MAX_POLICY_FILE_BYTES && Buffer.byteLength(text, 'utf8') > MAX_POLICY_FILE_BYTES) {
    return { issues: [tooLargeIssue(file)] };
  }
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true, schema: 'core', merge: false });
  const issues: PolicyIssue[] = doc.errors.map((e) => ({ ...at(e.pos[0]), severity: 'error', kind: 'yaml', message: parseMessage(e.message, e.code, quoteText) }));
  if (issues.length) return { issues };
  let value: unknown;
  try {
    // Aliases are legal YAML but a cheap way to blow up memory: cap them.
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { issues: [{ file, line: 1, column: 1, severity: 'error', kind: 'yaml', message: parseMessage((e as Error).message, undefined, quoteText) }] };
  }
  const locate = (path: readonly PathSegment[]): SourceLocation => at(nodeAt(doc, path)?.range?.[0] ?? 0);
  const locateKey = (path: readonly PathSegment[], key: string): SourceLocation => {
    const parent = nodeAt(doc, path);
    if (isMap(parent)) {
      for (const pair of parent.items) {
        if (isPair(pair) && isScalar(pair.key) && String(pair.key.value) === key) return at(pair.key.range?.[0] ?? 0);
      }
    }
    return locate(path);
  };
  return { source: { file, value, locate, locateKey }, issues };
}

/** Deepest existing node along `path`. */
function nodeAt(doc: Document, path: readonly PathSegment[]): Node | undefined {
  let node: unknown = doc.contents;
  for (const seg of path) {
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      next = pair?.value;
    } else if (isSeq(node) && typeof seg === 'number') next = node.items[seg];
    if (!isNode(next)) break;
    node = next;
  }
  return isNode(node) ? node : undefined;
}

/** JSON Pointer (`/a/0/b`, as Ajv reports) → path segments. */
export function pointerToPath(pointer: string, value: unknown): PathSegment[] {
  if (!pointer) return [];
  const out: PathSegment[] = [];
  let cur: unknown = value;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur) && /^\d+$/.test(seg)) {
      out.push(Number(seg));
      cur = cur[Number(seg)];
    } else {
      out.push(seg);
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}
