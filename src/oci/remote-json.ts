/**
 * What a registry sends before anything authenticates it (token answers, tag manifests, referrer
 * lists, tag lists, error bodies): read with a byte limit (the stream is dropped past it, never
 * read to its end), parsed with the JSON depth limit (core/json.ts), and checked for the shape the
 * caller acts on, so a hostile answer is a REGISTRY_* code, never a TypeError or a huge buffer.
 * Content fetched by digest is hashed before it reaches these parsers (client.ts).
 */
import { CtError } from '../core/errors.js';
import { isDigest } from '../core/digest.js';
import { parseJson } from '../core/json.js';
import type { ErrorCode } from '../core/codes.js';
import type { Descriptor } from './media-types.js';
import { readBounded, type Body } from '../core/body.js';

export { readBounded, readPrefix } from '../core/body.js';

/** The largest JSON document a registry may send (manifests, indexes, tag lists, tokens). */
export const MAX_REGISTRY_JSON = 4 * 1024 * 1024;

/** A JSON object from registry bytes: depth-bounded parse, `code` when not JSON or not an object. */
export function registryJsonObject(bytes: Buffer, what: string, code: ErrorCode = 'REGISTRY_ERROR'): Record<string, unknown> {
  const v = parseJson(bytes, what, code);
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new CtError(code, `${what}: not a JSON object`, { where: what });
  return v as Record<string, unknown>;
}

/** Reads and parses a JSON object answer within MAX_REGISTRY_JSON. */
export async function readRegistryJson(body: Body, what: string, code: ErrorCode = 'REGISTRY_ERROR', max = MAX_REGISTRY_JSON): Promise<Record<string, unknown>> {
  return registryJsonObject(await readBounded(body, max, what, code), what, code);
}

/**
 * An OCI descriptor as the client acts on it: a sha256 digest (never a tag: what is fetched
 * through it is then checked against it), a size, a media type; annotations and artifactType
 * strings when present.
 */
export function descriptorOf(v: unknown, where: string): Descriptor {
  const d = v as Partial<Descriptor> | null;
  const bad = (what: string): never => {
    throw new CtError('REGISTRY_ERROR', `${where}: ${what}`, { where });
  };
  if (!d || typeof d !== 'object' || Array.isArray(d)) bad('not a descriptor object');
  if (typeof d!.mediaType !== 'string') bad('mediaType is not a string');
  if (!isDigest(d!.digest)) bad('digest is not sha256:<64 hex>');
  if (!Number.isSafeInteger(d!.size) || (d!.size as number) < 0) bad('size is not a non-negative integer');
  if (d!.artifactType !== undefined && typeof d!.artifactType !== 'string') bad('artifactType is not a string');
  if (d!.annotations !== undefined) {
    const a = d!.annotations as unknown;
    if (!a || typeof a !== 'object' || Array.isArray(a) || Object.values(a).some((x) => typeof x !== 'string')) bad('annotations are not a string map');
  }
  return d as Descriptor;
}

/** `list` as descriptors (at most `max` of them). */
export function descriptorsOf(list: unknown, where: string, max = 10_000): Descriptor[] {
  if (!Array.isArray(list)) throw new CtError('REGISTRY_ERROR', `${where}: not an array`, { where });
  if (list.length > max) throw new CtError('REGISTRY_ERROR', `${where}: more than ${max} descriptors`, { where, limit: max });
  return list.map((d, i) => descriptorOf(d, `${where}[${i}]`));
}
