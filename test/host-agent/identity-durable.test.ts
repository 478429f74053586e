/**
 * The host's state directory, key and enrolment record survive a power cut, seen by strace: each is written to a
 * temporary, fsync'ed, renamed into place, and the state directory synced after the rename (the
 * server keeps the public key from enrolment on, and the enrolment token is spent).
 */
import { beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { repoRoot } from '../support/cli.js';
import { dirSyncAfter, pathsOf, renameOnto, traceNode } from '../support/strace.js';

const identityModule = pathToFileURL(join(repoRoot, 'build/host/agent/identity.js')).href;
const privateDirModule = pathToFileURL(join(repoRoot, 'build/host/runtime/private-dir.js')).href;

describe('host identity durability', () => {
  beforeAll(() => {
    execFileSync(process.execPath, [join(repoRoot, 'scripts/build.mjs')], { cwd: repoRoot });
  }, 120_000);

  it('syncs the state directory after the key and after the enrolment record are renamed into place', () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'ct-identity-durable-'));
    const server = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const calls = traceNode([
      `import { createPublicKey } from 'node:crypto';`,
      `import { loadIdentity, saveIdentity } from ${JSON.stringify(identityModule)};`,
      `const id = await loadIdentity(${JSON.stringify(stateDir)});`,
      `id.hostId = 'host-1'; id.serverPublicKey = createPublicKey(${JSON.stringify(server)});`,
      `await saveIdentity(${JSON.stringify(stateDir)}, id);`,
    ].join('\n'));
    for (const file of ['host-key.pem', 'enrolment.json']) {
      const renamed = renameOnto(calls, join(stateDir, file));
      // The file named with each check, so that a failure says which one was not synced.
      expect({ file, renamed: renamed > -1, synced: dirSyncAfter(calls, stateDir, renamed + 1) > renamed }).toEqual({ file, renamed: true, synced: true });
    }
  });

  it('syncs a state directory it creates into its parent (the key and enrolment are written into it next)', () => {
    const parent = mkdtempSync(join(tmpdir(), 'ct-identity-durable-'));
    const stateDir = join(parent, 'state');
    const calls = traceNode(`import { ensurePrivateDir } from ${JSON.stringify(privateDirModule)};\nawait ensurePrivateDir(${JSON.stringify(stateDir)});`);
    const made = calls.findIndex((c) => /^mkdir/.test(c.name) && c.result === '0' && pathsOf(c)[0] === stateDir);
    expect(made).toBeGreaterThan(-1);
    expect(dirSyncAfter(calls, parent, made + 1)).toBeGreaterThan(made);
  });
});
