/**
 * Reads a policy or suite document (YAML or JSON) keeping node positions, so that every error
 * (YAML syntax, schema, meaning) can point at file:line:column. JSON is parsed by the `yaml`
 * parser too (JSON is YAML 1.2), which also rejects duplicate keys that JSON.parse would silently
 * resolve to the last one.
 */
import { isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import type { SourceLocation } from './types.js';
import type { PolicyIssue } from './issues.js';

export const MAX_POLICY_FILE_BYTES = 1024 * 1024;

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
   * cases: a link to a credentials file would otherwise be quoted into the PR comment): the
   * parser's message is cut before the quoted text and ends with its code.
   */
  quoteText?: boolean;
}

function parseMessage(message: string, code: string | undefined, quoteText: boolean): string {
  const first = message.split('\n')[0];
  if (quoteText) return first.length > MAX_MESSAGE ? `${first.slice(0, MAX_MESSAGE)}…` : first;
  // The yaml parser quotes the text after a colon or in double quotes ("Unexpected scalar token in YAML stream: \"…\"", "Unresolved tag: !…").
  const bare = first.split(/[:"]/)[0].trim().slice(0, MAX_MESSAGE);
  return code ? `${bare} [${code}]` : bare;
}

export function parseSource(file: string, text: string, opts: ParseOptions = {}): { source?: ParsedSource; issues: PolicyIssue[] } {
  const quoteText = opts.quoteText ?? true;
  const lineCounter = new LineCounter();
  const at = (offset: number): SourceLocation => {
    const p = lineCounter.linePos(offset);
    return { file, line: p.line, column: p.col };
  };
  if (text.length > MAX_POLICY_FILE_BYTES) {
    return { issues: [{ file, line: 1, column: 1, severity: 'error', kind: 'too-large', message: `file larger than ${MAX_POLICY_FILE_BYTES} bytes` }] };
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
