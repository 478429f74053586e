/**
 * End to end, as a user runs it: ct keygen → ct pack → two log servers on 127.0.0.1 → ct sign
 * with both → ct verify (quorum 2) passes and appends its decision record → one byte of the .ctp
 * changed, manifest.toml edited, a file added → ct verify fails with the SPEC §2 exit code.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFile, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { runCt } from '../support/cli.js';
import { startLogServer, type LogServer } from '../../src/tlog/server.js';
import { loadPublicKey } from '../../src/trust/keys.js';
import { keyIdOf, spkiBase64 } from '../../src/trust/keyid.js';
import { openCtp } from '../../src/bundle/read.js';
import { parseVcsBundle } from '../../src/verify/vcs/parse.js';
import { writeCtp } from '../../src/bundle/write.js';
import { SECCOMP, tempDir } from './ctp-fixtures.js';

let tmp: { dir: string; cleanup: () => Promise<void> };
let logs: LogServer[] = [];
let keyId: string;
const p = (n: string) => join(tmp.dir, n);

beforeAll(async () => {
  tmp = await tempDir('ct-e2e-');
  logs = [
    await startLogServer({ db: p('log1.db'), logId: 'log-one', operator: 'Operator One' }),
    await startLogServer({ db: p('log2.db'), logId: 'log-two', operator: 'Operator Two' }),
  ];
  const kg = await runCt(['keygen', '--out', p('signer'), '--no-password']);
  expect(kg.code).toBe(0);
  const pub = await loadPublicKey(p('signer.pub'));
  keyId = keyIdOf(pub);
  const store = {
    version: 1,
    id: 'e2e',
    updated: '2026-01-01T00:00:00Z',
    keys: { builders: [{ id: keyId, algorithm: 'ed25519', publicKey: spkiBase64(pub), validFrom: '2024-01-01T00:00:00Z' }] },
    thresholds: {},
    logs: Object.fromEntries(logs.map((l) => [l.logId, { operator: l.operator, publicKey: l.publicKey, url: l.url, algorithm: 'ed25519' }])),
  };
  await writeFile(p('trust.json'), JSON.stringify(store, null, 2));
  await mkdir(p('root/app'), { recursive: true });
  await mkdir(p('sec'));
  await writeFile(p('root/app/hello.txt'), 'hello\n');
  await writeFile(p('sec/seccomp.json'), SECCOMP);
  const pack = await runCt(['pack', p('root'), '--name', 'hello', '--version', '1.0', '--security-dir', p('sec'), '-o', p('app.ctp')]);
  expect(pack.code).toBe(0);
}, 30_000);

/** The signed .ctp with one file replaced or added, rewritten as a valid archive (no re-signing). */
async function rewritten(name: string, f: (files: Map<string, Buffer>) => void): Promise<string> {
  const a = await openCtp(p('signed.ctp'));
  const files = new Map<string, Buffer>();
  for (const [n, e] of a.entries) files.set(n, e.data ?? Buffer.alloc(0));
  f(files);
  await writeCtp(p(name), files);
  return p(name);
}

afterAll(async () => {
  for (const l of logs) await l.close();
  await tmp.cleanup();
});

describe('keygen → sign with two logs → verify → tamper', () => {
  it('signs, verifies with quorum 2, records the decision, and fails after one byte changes', async () => {
    const sign = await runCt(['sign', p('app.ctp'), '--key', p('signer.key'), '--log', `log-one=${logs[0].url}`, '--log', logs[1].url, '--trust-store', p('trust.json'), '--out', p('signed.ctp')]);
    expect(sign.stderr).not.toMatch(/FAILED/);
    expect(sign.code).toBe(0);
    const archive = await openCtp(p('signed.ctp'));
    const bundle = parseVcsBundle(archive.file('attestations/bundle.json'));
    expect(bundle.attestations.map((a) => a.statement.predicateType).sort()).toEqual(['https://slsa.dev/provenance/v1', 'https://spdx.dev/Document']);
    expect(bundle.attestations[0].statement.subject.map((s) => s.name)).toEqual(['hello:1.0', 'manifest.toml', 'oci-layout/index.json', 'oci-layout/oci-layout', 'security/seccomp.json']);
    expect(new Set(bundle.logEntries.map((e) => e.entry.logId))).toEqual(new Set(['log-one', 'log-two']));
    const spdx = bundle.attestations.find((a) => a.statement.predicateType === 'https://spdx.dev/Document')!.statement.predicate as { files: { fileName: string }[] };
    expect(spdx.files.map((f) => f.fileName)).toContain('./app/hello.txt'); // SPDX 2.3 §8.1: relative to the package root, with ./
    expect(sign.stdout.trim()).toBe(archive.bundleDigest);

    const ok = await runCt(['verify', p('signed.ctp'), '--trust-store', p('trust.json'), '--audit-log', p('audit.jsonl')]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^VERIFIED/);
    const rec = JSON.parse((await readFile(p('audit.jsonl'), 'utf8')).trim()) as Record<string, unknown>;
    expect(rec).toMatchObject({ decision: 'ALLOW', imageDigest: archive.manifest.image_digest, bundleDigest: archive.bundleDigest, code: null, mode: 'strict' });

    // One byte of security/seccomp.json inside the tar.
    const bytes = await readFile(p('signed.ctp'));
    const at = bytes.indexOf('SCMP_ACT_ERRNO');
    expect(at).toBeGreaterThan(0);
    bytes[at + 9] = 'X'.charCodeAt(0);
    await writeFile(p('tampered.ctp'), bytes);
    const bad = await runCt(['verify', p('tampered.ctp'), '--trust-store', p('trust.json'), '--audit-log', p('audit.jsonl'), '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ decision: 'REJECT', code: 'DIGEST_MISMATCH' });
    const lines = (await readFile(p('audit.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[1])).toMatchObject({ decision: 'REJECT', code: 'DIGEST_MISMATCH' });

    // With only one log's entries trusted, quorum 2 fails (exit 4), and --log-quorum 1 passes.
    const oneLog = JSON.parse(await readFile(p('trust.json'), 'utf8')) as { logs: Record<string, unknown> };
    delete oneLog.logs['log-two'];
    await writeFile(p('trust-one.json'), JSON.stringify(oneLog));
    const cov = await runCt(['verify', p('signed.ctp'), '--trust-store', p('trust-one.json')]);
    expect(cov.code).toBe(4);
    expect(cov.stderr).toMatch(/INSUFFICIENT_LOG_COVERAGE/);
    expect((await runCt(['verify', p('signed.ctp'), '--trust-store', p('trust-one.json'), '--log-quorum', '1'])).code).toBe(0);
    expect((await runCt(['verify', p('signed.ctp'), '--trust-store', p('trust-one.json'), '--mode', 'permissive'])).code).toBe(0);
  }, 60_000);

  it('ct sign --key takes a keyring key by name, as ct keygen makes them; a name neither a file nor a key says so', async () => {
    const env = { CT_HOME: p('home') };
    expect((await runCt(['key', 'import', p('signer.key'), '--name', 'builder'], { env })).code).toBe(0);
    const logArgs = ['--log', `log-one=${logs[0].url}`, '--log', `log-two=${logs[1].url}`, '--trust-store', p('trust.json')];
    const sign = await runCt(['sign', p('app.ctp'), '--key', 'builder', ...logArgs, '--out', p('by-name.ctp')], { env });
    expect([sign.code, sign.stderr]).toEqual([0, expect.not.stringContaining('error')]);
    expect((await runCt(['verify', p('by-name.ctp'), '--trust-store', p('trust.json')])).stdout).toMatch(/^VERIFIED/);
    const none = await runCt(['sign', p('app.ctp'), '--key', 'nobody', ...logArgs, '--out', p('never.ctp')], { env });
    expect(none.code).toBe(11);
    expect(none.stderr).toContain(`error[IO_ERROR]: nobody: no such file, and no key of that name or id in the keyring ${p('home')}/keys (ct key list)`);
  }, 60_000);

  it('an edited manifest.toml → exit 1 DIGEST_MISMATCH; a file added outside covered paths → exit 1 UNCOVERED_FILE', async () => {
    const edited = await rewritten('edited.ctp', (f) => f.set('manifest.toml', Buffer.from(`${f.get('manifest.toml')!.toString()}\n[runtime]\ncapabilities = ["CAP_SYS_ADMIN"]\n`)));
    const r1 = await runCt(['verify', edited, '--trust-store', p('trust.json'), '--json']);
    expect(r1.code).toBe(1);
    expect(JSON.parse(r1.stdout).code).toBe('DIGEST_MISMATCH');
    const added = await rewritten('added.ctp', (f) => f.set('security/monitor.yaml', Buffer.from('rules: []\n')));
    const r2 = await runCt(['verify', added, '--trust-store', p('trust.json'), '--json', '--mode', 'audit']);
    expect(r2.code).toBe(1);
    expect(JSON.parse(r2.stdout).code).toBe('UNCOVERED_FILE');
  }, 30_000);

  it('an unsigned .ctp is rejected as such (exit 5, MISSING_ATTESTATION) and an unknown signer exits 3', async () => {
    const r = await runCt(['verify', p('app.ctp'), '--trust-store', p('trust.json'), '--json']);
    expect(r.code).toBe(5);
    expect(JSON.parse(r.stdout).code).toBe('MISSING_ATTESTATION');
    const store = JSON.parse(await readFile(p('trust.json'), 'utf8')) as { keys: Record<string, unknown[]> };
    store.keys = { builders: [] };
    await writeFile(p('trust-nokey.json'), JSON.stringify(store));
    await copyFile(p('signed.ctp'), p('signed2.ctp'));
    const u = await runCt(['verify', p('signed2.ctp'), '--trust-store', p('trust-nokey.json')]);
    expect(u.code).toBe(3);
  }, 30_000);
});
