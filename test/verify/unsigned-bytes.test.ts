/**
 * #13 finding 5: a verified .ctp holds nothing but signed subjects and the tar structure the format
 * fixes. Each case adds one kind of unsigned bytes to a signed bundle that verifies; each was
 * accepted before (the signatures cover files, not these bytes) and is refused now with its code.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyCtp } from '../../src/verify/ctp/verify-ctp.js';
import { openCtp } from '../../src/bundle/read.js';
import { rewriteCtp, writeCtp } from '../../src/bundle/write.js';
import { sha256Hex } from '../../src/core/digest.js';
import { makeKey, makeStore, MemLog, trustOf } from './fixtures.js';
import { signCtpInMemory, tempDir, writeUnsignedCtp } from './ctp-fixtures.js';
import { rawEntry, withoutEnd, type RawEntry } from '../bundle/tar-fixtures.js';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const signer = makeKey();
const logA = new MemLog('log-a', 'Operator A');
const logB = new MemLog('log-b', 'Operator B');
const trust = trustOf(makeStore({ signers: [{ key: signer }], logs: [logA, logB] }));
let tmp: { dir: string; cleanup: () => Promise<void> };
let signed: Buffer;
let firstName: string;

function pax(records: Record<string, string>, type = 'x'): RawEntry {
  let body = '';
  for (const [k, v] of Object.entries(records)) {
    const rec = ` ${k}=${v}\n`;
    let len = rec.length + 2;
    while (String(len).length + Buffer.byteLength(rec) !== len) len = String(len).length + Buffer.byteLength(rec);
    body += `${len}${rec}`;
  }
  return { name: 'PaxHeader/x', type, data: body };
}

/** Extended headers put in front of the bundle's first entry (they then apply to it). */
const before = (...meta: RawEntry[]): Buffer => Buffer.concat([...meta.map(rawEntry), signed]);
const appended = (...entries: RawEntry[]): Buffer => Buffer.concat([withoutEnd(signed), ...entries.map(rawEntry), Buffer.alloc(1024)]);

beforeAll(async () => {
  tmp = await tempDir('ct-unsigned-');
  await writeUnsignedCtp(join(tmp.dir, 'u.ctp'));
  await signCtpInMemory(join(tmp.dir, 'u.ctp'), join(tmp.dir, 's.ctp'), signer, [logA, logB]);
  signed = await readFile(join(tmp.dir, 's.ctp'));
  firstName = signed.toString('utf8', 0, signed.indexOf(0));
});
afterAll(async () => tmp.cleanup());

async function outcome(b: Buffer): Promise<string> {
  const r = await verifyCtp(b, { trust });
  return r.decision === 'ALLOW' ? 'ALLOW' : String(r.code);
}

describe('unsigned bytes in a signed .ctp', () => {
  it('the signed bundle verifies, also with a matching pax path header in front (what the writer makes for long names)', async () => {
    expect(await outcome(signed)).toBe('ALLOW');
    expect(await outcome(before(pax({ path: firstName })))).toBe('ALLOW');
  });

  it('a pax header with only a comment: UNSIGNED_CONTENT', async () => {
    expect(await outcome(before(pax({ comment: 'x'.repeat(100_000) })))).toBe('UNSIGNED_CONTENT');
  });

  it('unknown pax keys and global pax headers: UNSIGNED_CONTENT', async () => {
    expect(await outcome(before(pax({ path: firstName, 'LIBARCHIVE.junk': 'y' })))).toBe('UNSIGNED_CONTENT');
    expect(await outcome(before(pax({ mtime: '0' }, 'g')))).toBe('UNSIGNED_CONTENT');
  });

  it('a run of extended headers (many GNU long names, several pax headers) before one entry: UNSIGNED_CONTENT', async () => {
    const longName = (s: string): RawEntry => ({ name: '././@LongLink', type: 'L', data: `${s}\0` });
    expect(await outcome(before(...Array.from({ length: 40 }, () => longName(firstName))))).toBe('UNSIGNED_CONTENT');
    expect(await outcome(before(pax({ path: firstName }), pax({ path: firstName })))).toBe('UNSIGNED_CONTENT');
  });

  it('a GNU long link name (K) in a .ctp: UNSIGNED_CONTENT', async () => {
    expect(await outcome(before({ name: '././@LongLink', type: 'K', data: 'target\0' }))).toBe('UNSIGNED_CONTENT');
  });

  it('a NUL inside a pax path or after a GNU long name is refused, not truncated: TAR_UNSAFE_PATH', async () => {
    expect(await outcome(before(pax({ path: `${firstName}\0junk` })))).toBe('TAR_UNSAFE_PATH');
    expect(await outcome(before({ name: '././@LongLink', type: 'L', data: `${firstName}\0junk\0` }))).toBe('TAR_UNSAFE_PATH');
  });

  it('C1 control characters and invalid UTF-8 in names: TAR_UNSAFE_PATH', async () => {
    for (const n of ['security/a\u0085b', 'security/a\u009bb']) {
      await expect(openCtp(appended({ name: n, data: 'x' }))).rejects.toMatchObject({ code: 'TAR_UNSAFE_PATH' });
    }
    const bad = rawEntry({ name: 'security/ab', data: 'x' });
    bad[10] = 0xff; // "security/a\xffb": not UTF-8 (the header checksum is fixed below)
    let sum = 0;
    bad.fill(0x20, 148, 156);
    for (let k = 0; k < 512; k++) sum += bad[k];
    bad.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    await expect(openCtp(Buffer.concat([withoutEnd(signed), bad, Buffer.alloc(1024)]))).rejects.toMatchObject({ code: 'TAR_UNSAFE_PATH' });
  });

  it('an unreferenced blob in the OCI layout (content matching its name): UNSIGNED_CONTENT', async () => {
    const a = await openCtp(signed);
    const files = new Map<string, Buffer>();
    for (const [n, e] of a.entries) files.set(n, e.data ?? Buffer.alloc(0));
    const junk = Buffer.from('not referenced by anything');
    files.set(`oci-layout/blobs/sha256/${sha256Hex(junk)}`, junk);
    const p = join(tmp.dir, 'extra-blob.ctp');
    await writeCtp(p, files);
    expect(await outcome(await readFile(p))).toBe('UNSIGNED_CONTENT');
  });

  it('an extra empty directory: UNSIGNED_CONTENT', async () => {
    expect(await outcome(appended({ name: 'extra/', type: '5' }))).toBe('UNSIGNED_CONTENT');
    expect(await outcome(appended({ name: 'security/empty/', type: '5' }))).toBe('UNSIGNED_CONTENT');
  });
});

describe('attestations/: only what the format defines, strictly', () => {
  const withBundle = async (edit: (doc: Record<string, unknown>) => string): Promise<Buffer> => {
    const a = await openCtp(signed);
    const doc = JSON.parse(a.file('attestations/bundle.json').toString('utf8')) as Record<string, unknown>;
    const p = join(tmp.dir, `edited-${Math.random().toString(36).slice(2)}.ctp`);
    await rewriteCtp(join(tmp.dir, 's.ctp'), p, { add: { 'attestations/bundle.json': Buffer.from(edit(doc)) } });
    return readFile(p);
  };
  const withFile = async (name: string, data: string): Promise<Buffer> => {
    const p = join(tmp.dir, `added-${Math.random().toString(36).slice(2)}.ctp`);
    await rewriteCtp(join(tmp.dir, 's.ctp'), p, { add: { [name]: Buffer.from(data) } });
    return readFile(p);
  };

  it('the bundle re-serialised as it is still verifies', async () => {
    expect(await outcome(await withBundle((d) => JSON.stringify(d)))).toBe('ALLOW');
  });

  it('an unknown key in bundle.json (top level, envelope, signature, log entry, proof, metadata): MALFORMED_BUNDLE', async () => {
    const edits: ((d: Json) => void)[] = [
      (d) => (d.junk = 'x'.repeat(10_000)),
      (d) => (d.attestations[0].extra = 1),
      (d) => (d.attestations[0].signatures[0].note = 'hi'),
      (d) => (d.logEntries[0].comment = 'x'),
      (d) => (d.logEntries[0].inclusionProof.more = []),
      (d) => (d.metadata = { producer: 'ct', extra: 'x' }),
    ];
    for (const edit of edits) {
      const b = await withBundle((d) => {
        edit(d);
        return JSON.stringify(d);
      });
      expect(await outcome(b)).toBe('MALFORMED_BUNDLE');
    }
  });

  it('__proto__ / constructor / prototype keys anywhere in bundle.json: MALFORMED_BUNDLE', async () => {
    for (const key of ['__proto__', 'constructor', 'prototype']) {
      const top = await withBundle((d) => JSON.stringify(d).replace(/^\{/, `{"${key}":{"polluted":true},`));
      expect(await outcome(top)).toBe('MALFORMED_BUNDLE');
      const deep = await withBundle((d) => JSON.stringify(d).replace('"inclusionProof":{', `"inclusionProof":{"${key}":{},`));
      expect(await outcome(deep)).toBe('MALFORMED_BUNDLE');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('junk attestations/*.sigstore.json, with no Sigstore identity asked for: refused', async () => {
    expect(await outcome(await withFile('attestations/junk.sigstore.json', '{}'))).toBe('MALFORMED_BUNDLE');
    expect(await outcome(await withFile('attestations/junk.sigstore.json', 'x'.repeat(100_000)))).toBe('MALFORMED_BUNDLE');
  });

  it('a file under attestations/ that no verifier reads: UNSIGNED_CONTENT', async () => {
    expect(await outcome(await withFile('attestations/notes.txt', 'unsigned'))).toBe('UNSIGNED_CONTENT');
    expect(await outcome(await withFile('attestations/sub/bundle.json', '{}'))).toBe('UNSIGNED_CONTENT');
  });
});
