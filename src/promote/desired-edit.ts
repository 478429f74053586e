/**
 * Edits one app's `bundle` (and `bundleDigest`) in a desired-state YAML file so that a reviewer
 * sees exactly the lines that change. The `yaml` document API locates the nodes and checks the
 * file; the new value is then spliced into the original text at the scalar's own range, in the
 * scalar's own quoting style, so comments, order, indentation and every other byte survive. The
 * result is parsed again and compared with the intended document: nothing else may differ.
 */
import YAML, { isAlias, isMap, isScalar, isCollection, type Document, type Node, type Pair, type Scalar, type YAMLMap } from 'yaml';
import { CtError } from '../core/errors.js';
import { canonicalize } from '../core/jcs.js';

export const MAX_DESIRED_STATE_BYTES = 1024 * 1024;

export interface BundlePin {
  environment: string;
  app: string;
  /** Registry reference pinned by digest (`registry/repo[:tag]@sha256:…`). */
  bundle: string;
  /** sha256 of the .ctp itself, when the desired state pins it. */
  bundleDigest?: string;
}

export interface EditResult {
  text: string;
  changed: boolean;
  /** What the file held before (the reference that runs now, as far as the desired state says). */
  previous: { bundle: string; bundleDigest?: string };
}

const REF = /^[a-z0-9.-]+(?::\d{1,5})?\/[a-z0-9._/-]+(?::[\w.-]{1,128})?@sha256:[0-9a-f]{64}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

function parse(text: string, file: string): Document.Parsed {
  if (Buffer.byteLength(text) > MAX_DESIRED_STATE_BYTES) throw new CtError('PROMOTE_YAML_INVALID', `${file}: larger than ${MAX_DESIRED_STATE_BYTES} bytes`, { file });
  const doc = YAML.parseDocument(text, { uniqueKeys: true, keepSourceTokens: false });
  if (doc.errors.length) throw new CtError('PROMOTE_YAML_INVALID', `${file}: does not parse, refusing to edit it: ${doc.errors[0].message.split('\n')[0].slice(0, 300)}`, { file });
  return doc;
}

/** Anchors referenced by an alias anywhere in the document. */
function aliasedAnchors(doc: Document.Parsed): Set<string> {
  const out = new Set<string>();
  YAML.visit(doc, { Alias: (_k, n) => void out.add(n.source) });
  return out;
}

function pairOf(map: YAMLMap, key: string): Pair<Scalar, Node> | undefined {
  return map.items.find((p) => isScalar(p.key) && p.key.value === key) as Pair<Scalar, Node> | undefined;
}

/**
 * Walks `environments.<env>.apps.<app>` refusing aliases and anchors on the way: editing through
 * an alias would change another node, and editing an anchored node would change its aliases.
 */
function appMap(doc: Document.Parsed, pin: BundlePin, file: string): YAMLMap {
  const aliased = aliasedAnchors(doc);
  const where: string[] = [];
  let node: unknown = doc.contents;
  for (const key of ['environments', pin.environment, 'apps', pin.app]) {
    const here = where.join('.') || '(document)';
    if (isAlias(node)) throw new CtError('PROMOTE_YAML_ALIAS', `${file}: ${here} is an alias (*${node.source}): refusing to edit through it`, { file, where: here });
    if (!isMap(node)) throw new CtError('PROMOTE_APP_MISSING', `${file}: ${here} is not a mapping`, { file, where: here });
    if (node.anchor && aliased.has(node.anchor)) throw new CtError('PROMOTE_YAML_ALIAS', `${file}: ${here} carries anchor &${node.anchor} used elsewhere: an edit would change its aliases too`, { file, where: here });
    const pair = pairOf(node, key);
    where.push(key);
    if (!pair) {
      const code = key === pin.app || key === pin.environment ? 'PROMOTE_APP_MISSING' : 'PROMOTE_YAML_INVALID';
      throw new CtError(code, `${file}: ${where.join('.')} does not exist (the app must already be declared in the environment)`, { file, where: where.join('.') });
    }
    node = pair.value;
  }
  const here = where.join('.');
  if (isAlias(node)) throw new CtError('PROMOTE_YAML_ALIAS', `${file}: ${here} is an alias (*${node.source}): refusing to edit through it`, { file, where: here });
  if (!isMap(node)) throw new CtError('PROMOTE_YAML_INVALID', `${file}: ${here} is not a mapping`, { file, where: here });
  if (node.anchor && aliased.has(node.anchor)) throw new CtError('PROMOTE_YAML_ALIAS', `${file}: ${here} carries anchor &${node.anchor} used elsewhere`, { file, where: here });
  // Merge keys (`<<: *base`) would make the app's effective value come from elsewhere.
  if (node.items.some((p) => isScalar(p.key) && p.key.value === '<<')) throw new CtError('PROMOTE_YAML_ALIAS', `${file}: ${here} uses a merge key (<<): refusing to edit it`, { file, where: here });
  return node;
}

function scalarAt(map: YAMLMap, key: string, file: string, where: string): Scalar | undefined {
  const pair = pairOf(map, key);
  if (!pair) return undefined;
  const v = pair.value;
  if (isAlias(v)) throw new CtError('PROMOTE_YAML_ALIAS', `${file}: ${where}.${key} is an alias (*${v.source})`, { file, where: `${where}.${key}` });
  if (!isScalar(v) || typeof v.value !== 'string' || !v.range) throw new CtError('PROMOTE_YAML_INVALID', `${file}: ${where}.${key} is not a string`, { file, where: `${where}.${key}` });
  if (v.anchor) throw new CtError('PROMOTE_YAML_ALIAS', `${file}: ${where}.${key} carries anchor &${v.anchor}`, { file, where: `${where}.${key}` });
  if (v.type === 'BLOCK_FOLDED' || v.type === 'BLOCK_LITERAL') throw new CtError('PROMOTE_YAML_INVALID', `${file}: ${where}.${key} is a block scalar; write it on one line`, { file });
  return v;
}

/** The new value written in the scalar's own style. References and digests need no escaping. */
function render(old: Scalar, value: string): string {
  if (old.type === 'QUOTE_DOUBLE') return JSON.stringify(value);
  if (old.type === 'QUOTE_SINGLE') return `'${value}'`;
  return value;
}

function checkPin(pin: BundlePin): void {
  if (!REF.test(pin.bundle)) throw new CtError('USAGE', `bundle ${JSON.stringify(pin.bundle.slice(0, 200))} must be a registry reference pinned by digest (…@sha256:<64 hex>)`, { bundle: pin.bundle.slice(0, 200) });
  if (pin.bundleDigest !== undefined && !DIGEST.test(pin.bundleDigest)) throw new CtError('USAGE', 'bundleDigest must be sha256:<64 hex>', {});
}

export function setBundle(text: string, pin: BundlePin, file = 'desired state'): EditResult {
  checkPin(pin);
  const doc = parse(text, file);
  const app = appMap(doc, pin, file);
  const where = `environments.${pin.environment}.apps.${pin.app}`;
  const bundle = scalarAt(app, 'bundle', file, where);
  if (!bundle) throw new CtError('PROMOTE_YAML_INVALID', `${file}: ${where}.bundle is missing`, { file, where });
  const digest = scalarAt(app, 'bundleDigest', file, where);
  const previous = { bundle: bundle.value as string, ...(digest ? { bundleDigest: digest.value as string } : {}) };
  if (digest && pin.bundleDigest === undefined) {
    throw new CtError('USAGE', `${file}: ${where} pins bundleDigest; give the new bundle's digest too (a stale pin would make the deploy fail)`, { file, where });
  }
  const splices: { from: number; to: number; text: string }[] = [];
  if (previous.bundle !== pin.bundle) splices.push({ from: bundle.range![0], to: bundle.range![1], text: render(bundle, pin.bundle) });
  if (pin.bundleDigest !== undefined && previous.bundleDigest !== pin.bundleDigest) {
    if (digest) splices.push({ from: digest.range![0], to: digest.range![1], text: render(digest, pin.bundleDigest) });
    else splices.push(insertAfter(text, app, bundle, `bundleDigest: ${pin.bundleDigest}`, file));
  }
  if (splices.length === 0) return { text, changed: false, previous };
  let out = text;
  for (const s of splices.sort((a, b) => b.from - a.from)) out = out.slice(0, s.from) + s.text + out.slice(s.to);
  verifyOnlyPinChanged(doc, out, pin, file);
  return { text: out, changed: true, previous };
}

/** A new `key: value` line after the bundle line, at the bundle key's indentation (block maps only). */
function insertAfter(text: string, app: YAMLMap, bundle: Scalar, line: string, file: string): { from: number; to: number; text: string } {
  const pair = pairOf(app, 'bundle')!;
  if (app.flow) throw new CtError('PROMOTE_YAML_INVALID', `${file}: the app is a flow mapping ({…}); write it as a block mapping to add bundleDigest`, { file });
  const keyStart = pair.key.range![0];
  const col = keyStart - (text.lastIndexOf('\n', keyStart - 1) + 1);
  const eol = text.indexOf('\n', bundle.range![1]);
  const at = eol === -1 ? text.length : eol;
  return { from: at, to: at, text: `\n${' '.repeat(col)}${line}` };
}

/** The edited text must parse and equal the original document with only the pin changed. */
function verifyOnlyPinChanged(before: Document.Parsed, after: string, pin: BundlePin, file: string): void {
  const doc = parse(after, file);
  const want = before.clone();
  want.setIn(['environments', pin.environment, 'apps', pin.app, 'bundle'], pin.bundle);
  if (pin.bundleDigest !== undefined) want.setIn(['environments', pin.environment, 'apps', pin.app, 'bundleDigest'], pin.bundleDigest);
  // Compared as canonical JSON: an added bundleDigest lands after `bundle` in the text, at the end in `want`.
  const a = canonicalize(doc.toJS({ maxAliasCount: 100 }));
  const b = canonicalize(want.toJS({ maxAliasCount: 100 }));
  if (a !== b) throw new CtError('PROMOTE_YAML_INVALID', `${file}: the edit could not be made without changing other content; edit it by hand`, { file });
  if (!isCollection(doc.contents)) throw new CtError('PROMOTE_YAML_INVALID', `${file}: not a mapping`, { file });
}

/** The pin an environment's app has now (for "what runs now"), or undefined when absent. */
export function currentPin(text: string, environment: string, app: string, file = 'desired state'): { bundle: string; bundleDigest?: string } | undefined {
  const doc = parse(text, file);
  const v = doc.getIn(['environments', environment, 'apps', app]) as YAMLMap | undefined;
  if (!isMap(v)) return undefined;
  const b = v.get('bundle');
  const d = v.get('bundleDigest');
  return typeof b === 'string' ? { bundle: b, ...(typeof d === 'string' ? { bundleDigest: d } : {}) } : undefined;
}
