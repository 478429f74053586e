/**
 * #13 finding 2: manifest.toml is parsed only after its bytes are found among the verified
 * attestation subjects (verify, and the host, server and admission paths that open with
 * openCtpToVerify), and every parse of it is bounded whoever asks (inspect, unpack).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { verifyCtp, verifyCtpArchive } from '../../src/verify/ctp/verify-ctp.js';
import { VerificationCache } from '../../src/verify/cache.js';
import { openCtp, openCtpToVerify } from '../../src/bundle/read.js';
import { writeCtp } from '../../src/bundle/write.js';
import { inspectBundle } from '../../src/bundle/inspect.js';
import { unpackCtp } from '../../src/bundle/unpack.js';
import { CtError } from '../../src/core/errors.js';
import { repoRoot } from '../support/cli.js';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { coveredFiles } from '../../src/attest/sign-ctp.js';
import { buildStatement, ctpSubjects } from '../../src/attest/statement.js';
import { signStatement } from '../../src/attest/sign.js';
import { buildVcsBundle, vcsBundleBytes, type VcsLogEntry } from '../../src/attest/vcs-bundle.js';
import { DEFAULT_PREDICATES, makeKey, makeStore, MemLog, trustOf } from './fixtures.js';
import { signCtpInMemory, tempDir, writeUnsignedCtp } from './ctp-fixtures.js';

const signer = makeKey();
const logA = new MemLog('log-a', 'Operator A');
const logB = new MemLog('log-b', 'Operator B');
const trust = trustOf(makeStore({ signers: [{ key: signer }], logs: [logA, logB] }));
let tmp: { dir: string; cleanup: () => Promise<void> };
let signed: string;

/** The signed bundle with manifest.toml replaced (not re-signed). */
async function withManifest(name: string, text: string): Promise<string> {
  const a = await openCtp(signed);
  const files = new Map<string, Buffer>();
  for (const [n, e] of a.entries) files.set(n, e.data ?? Buffer.alloc(0));
  files.set('manifest.toml', Buffer.from(text));
  const p = join(tmp.dir, `${name}.ctp`);
  await writeCtp(p, files);
  return p;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    if (!(e instanceof CtError)) throw e;
    return e.code;
  }
}

/** 30,000 tables in 240 KiB: under the manifest size limit, far beyond the table limit. */
const MANY_TABLES = Array.from({ length: 30_000 }, (_, i) => `[t${i}]`).join('\n');
/** Not TOML at all: a parse would fail with MANIFEST_INVALID. */
const NOT_TOML = 'name = = =\n[[[';

beforeAll(async () => {
  tmp = await tempDir('ct-auth-first-');
  const unsigned = join(tmp.dir, 'unsigned.ctp');
  await writeUnsignedCtp(unsigned);
  signed = join(tmp.dir, 'signed.ctp');
  await signCtpInMemory(unsigned, signed, signer, [logA, logB]);
});
afterAll(async () => tmp.cleanup());

describe('verify: authenticate before parsing manifest.toml', () => {
  it('a swapped manifest.toml that is not even TOML is refused as unsigned, never parsed', async () => {
    const p = await withManifest('not-toml', NOT_TOML);
    const r = await verifyCtp(p, { trust });
    expect(r.decision).toBe('REJECT');
    // A parse first would have answered MANIFEST_INVALID.
    expect(r.code).toBe('DIGEST_MISMATCH');
    expect(r.message).toContain('manifest.toml');
  });

  it('a swapped manifest.toml with 30,000 tables is refused as unsigned, in audit mode too', async () => {
    const p = await withManifest('tables', MANY_TABLES);
    for (const mode of ['strict', 'audit'] as const) {
      const r = await verifyCtp(p, { trust, mode });
      expect([r.decision, r.code]).toEqual(['REJECT', 'DIGEST_MISMATCH']);
    }
  });

  it('openCtpToVerify parses nothing; the manifest is readable only once verification found it signed', async () => {
    const bad = await openCtpToVerify(await withManifest('not-toml-2', NOT_TOML));
    expect(bad.manifestReady).toBe(false);
    expect(() => bad.manifest).toThrow(expect.objectContaining({ code: 'UNCOVERED_FILE' }));
    const rep = await verifyCtpArchive(bad, { trust, mode: 'audit' });
    expect(rep.decision).toBe('REJECT');
    expect(bad.manifestReady).toBe(false);

    const good = await openCtpToVerify(signed);
    expect(good.manifestReady).toBe(false);
    const ok = await verifyCtpArchive(good, { trust, mode: 'audit' });
    expect(ok.decision).toBe('ALLOW');
    expect(good.manifest.name).toBe('hello');
    expect(ok.evidence.imageDigest).toBe(good.manifest.image_digest);
  });

  it('a cache hit authenticates the manifest too (same bytes, same trust)', async () => {
    const cache = new VerificationCache();
    await verifyCtpArchive(await openCtpToVerify(signed), { trust, cache });
    const again = await openCtpToVerify(signed);
    expect((await verifyCtpArchive(again, { trust, cache })).decision).toBe('ALLOW');
    expect(cache.hits).toBe(1);
    expect(again.manifest.name).toBe('hello');
  });

  it('an authenticated manifest that misnames the image is still DIGEST_MISMATCH (compared after parsing)', async () => {
    const u = join(tmp.dir, 'wrong-image.ctp');
    await writeUnsignedCtp(u);
    const a = await openCtp(u);
    const files = new Map<string, Buffer>();
    for (const [n, e] of a.entries) files.set(n, e.data ?? Buffer.alloc(0));
    files.set('manifest.toml', Buffer.from(a.file('manifest.toml').toString().replace(/image_digest = "sha256:[0-9a-f]{64}"/, `image_digest = "sha256:${'1'.repeat(64)}"`)));
    const unsigned = join(tmp.dir, 'wrong-image-u.ctp');
    await writeCtp(unsigned, files);
    // Signed as ct sign would, over the real image manifest digest: the signature covers the bad manifest.
    const archive = await openCtpToVerify(unsigned);
    const image = checkOciLayout(archive, { imageDigest: 'later' });
    const subjects = ctpSubjects('hello:1.0', image.manifestDigest, coveredFiles(archive));
    const envelopes = DEFAULT_PREDICATES.map((p) => signStatement(buildStatement(subjects, p.type, p.predicate), signer.privateKey));
    const entries: VcsLogEntry[] = [];
    for (const log of [logA, logB]) envelopes.forEach((env, i) => entries.push(log.record(env, image.manifestDigest, DEFAULT_PREDICATES[i].type, '2026-11-26T00:00:00Z')));
    files.set('attestations/bundle.json', vcsBundleBytes(buildVcsBundle(envelopes, entries)));
    const s = join(tmp.dir, 'wrong-image-s.ctp');
    await writeCtp(s, files);
    const r = await verifyCtp(s, { trust, mode: 'audit' });
    expect([r.decision, r.code]).toEqual(['REJECT', 'DIGEST_MISMATCH']);
    expect(r.message).toContain('image_digest');
  });

  it('every verifying caller opens with openCtpToVerify (no manifest parse before verifyCtpArchive)', async () => {
    // The host, the deploy server, admission and ct k8s open a bundle and verify it: a plain openCtp
    // there would parse manifest.toml before authenticating it.
    const offenders: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      for (const d of await readdir(dir, { withFileTypes: true })) {
        const p = join(dir, d.name);
        if (d.isDirectory()) await walk(p);
        else if (d.name.endsWith('.ts')) {
          const text = await readFile(p, 'utf8');
          if (text.includes('verifyCtpArchive(') && /\bopenCtp\(/.test(text)) offenders.push(p.slice(repoRoot.length + 1));
        }
      }
    };
    for (const root of ['src', 'server', 'host']) await walk(join(repoRoot, root));
    expect(offenders).toEqual([]);
  });
});

describe('bounded parse where nothing can be authenticated (inspect, unpack)', () => {
  it('inspect and unpack of an unsigned bundle with 30,000 tables: MANIFEST_INVALID naming the limit, short message', async () => {
    const p = await withManifest('inspect-tables', MANY_TABLES);
    let err: CtError | undefined;
    const t0 = Date.now();
    try {
      await inspectBundle(p);
    } catch (e) {
      err = e as CtError;
    }
    expect(err).toBeInstanceOf(CtError);
    expect(err!.code).toBe('MANIFEST_INVALID');
    expect(err!.details.limit).toBe('toml.tables');
    expect(err!.message.length).toBeLessThan(1000);
    expect(Date.now() - t0).toBeLessThan(20_000); // a bound, not a benchmark: no parse of 30,000 tables
    expect(await codeOf(unpackCtp(p, join(tmp.dir, 'out-tables')))).toBe('MANIFEST_INVALID');
  });

  it('a manifest.toml over 256 KiB is refused while streaming, before it is kept or parsed', async () => {
    const p = await withManifest('big', `# ${'x'.repeat(300 * 1024)}\n`);
    let err: CtError | undefined;
    try {
      await openCtp(p);
    } catch (e) {
      err = e as CtError;
    }
    expect(err?.code).toBe('TAR_LIMIT_EXCEEDED');
    expect(err?.details.limit).toBe('manifest');
    expect((await verifyCtp(p, { trust })).code).toBe('TAR_LIMIT_EXCEEDED');
  });
});
