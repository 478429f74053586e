import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { action, processIo } from '../io.js';
import { CtError, asIoError } from '../../core/errors.js';
import { loadTrustStore, parseTrustStore, saveTrustStore, trustStoreDigest, findKey, keyValidity, isKeyRevoked } from '../../trust/store.js';
import { addKey, addLog, bumpVersion, newTrustStore, revoke, setThreshold } from '../../trust/edit.js';
import { loadPublicKey, parsePublicKey } from '../../trust/keys.js';
import { loadPrivateKeyFor } from '../../trust/passphrase.js';
import { signTrustStore, verifyTrustStoreUpdate } from '../../trust/update.js';
import { refuseExistingOutput, writeFileAtomic } from '../../core/fs.js';
import type { TrustStore } from '../../trust/types.js';
import { keyringDir, resolvePrivateKeyPath } from '../../trust/keyring.js';

function noteDroppedSignatures(file: string, before: TrustStore): void {
  if (before.signatures?.length) processIo.err(`note: ${file} was signed; the edit removed its ${before.signatures.length} signature(s)`);
}

async function edit(file: string, change: (s: TrustStore) => TrustStore): Promise<TrustStore> {
  const before = await loadTrustStore(file);
  const after = change(before);
  await saveTrustStore(file, after);
  noteDroppedSignatures(file, before);
  return after;
}

/** What `show --json` prints: the store's facts with each key's status now. */
function summary(store: TrustStore, now: Date): Record<string, unknown> {
  const ids = new Set(Object.values(store.keys).flatMap((ks) => ks.map((k) => k.id)));
  return {
    id: store.id,
    version: store.version,
    updated: store.updated,
    digest: trustStoreDigest(store),
    keys: [...ids].map((id) => {
      const { key, roles } = findKey(store, id)!;
      const status = isKeyRevoked(store, id) ? 'revoked' : keyValidity(key, now);
      return { id, roles, algorithm: key.algorithm, validFrom: key.validFrom, validUntil: key.validUntil, status, owner: key.metadata?.owner };
    }),
    thresholds: store.thresholds ?? {},
    logs: Object.entries(store.logs ?? {}).map(([id, l]) => ({ id, operator: l.operator, url: l.url })),
    revoked: store.revoked ?? {},
    signatures: (store.signatures ?? []).map((s) => s.keyid),
  };
}

/** `ct trust-store …`: create, edit, inspect, sign and apply VCS trust stores (SPEC §5). */
export function register(program: Command): void {
  const ts = program.command('trust-store').description('create, edit, sign and update VCS trust stores');

  ts.command('init')
    .description('create an empty trust store (version 1)')
    .requiredOption('--id <id>', 'trust store id')
    .requiredOption('-o, --out <file>', 'file to write')
    .option('--force', 'replace an existing file')
    .action(
      action(async (opts: { id: string; out: string; force?: boolean }) => {
        await refuseExistingOutput(opts.out, opts.force);
        const store = newTrustStore(opts.id);
        await saveTrustStore(opts.out, store, { replace: Boolean(opts.force) });
        processIo.out(trustStoreDigest(store));
      }),
    );

  ts.command('add-key')
    .argument('<file>', 'trust store')
    .description('add an Ed25519 public key under a role')
    .requiredOption('--role <role>', 'builders, releasers, reviewers, deployers, trust-store-updaters, …')
    .requiredOption('--key <pubfile>', 'public key file (SPKI PEM or base64 SPKI DER)')
    .option('--valid-from <date>', 'RFC 3339 start of validity (default: now)')
    .option('--valid-until <date>', 'RFC 3339 end of validity (exclusive)')
    .option('--owner <owner>', 'metadata.owner of the entry')
    .action(
      action(async (file: string, opts: { role: string; key: string; validFrom?: string; validUntil?: string; owner?: string }) => {
        const pub = await loadPublicKey(opts.key);
        const after = await edit(file, (s) =>
          addKey(s, opts.role, pub, { validFrom: opts.validFrom, validUntil: opts.validUntil, metadata: opts.owner ? { owner: opts.owner } : undefined }),
        );
        processIo.out(after.keys[opts.role].at(-1)!.id);
      }),
    );

  ts.command('add-log')
    .argument('<file>', 'trust store')
    .description('add (or replace) a transparency log')
    .requiredOption('--id <logid>', 'log id')
    .requiredOption('--operator <name>', 'log operator')
    .option('--public-key <b64>', 'log key as base64 SPKI DER')
    .option('--public-key-file <file>', 'log key file (SPKI PEM)')
    .requiredOption('--url <url>', 'log API URL')
    .action(
      action(async (file: string, opts: { id: string; operator: string; publicKey?: string; publicKeyFile?: string; url: string }) => {
        if (Boolean(opts.publicKey) === Boolean(opts.publicKeyFile)) {
          throw new CtError('USAGE', 'give exactly one of --public-key and --public-key-file', {});
        }
        const pub = opts.publicKey ? parsePublicKey(opts.publicKey, '--public-key') : await loadPublicKey(opts.publicKeyFile!);
        await edit(file, (s) => addLog(s, opts.id, { operator: opts.operator, publicKey: pub, url: opts.url }));
        processIo.out(opts.id);
      }),
    );

  ts.command('set-threshold')
    .argument('<file>', 'trust store')
    .description('define a k-of-n signer group (default members: every key of the role named like the group)')
    .requiredOption('--group <name>', 'group name: trust-store-updaters counts signers of store updates; any other (e.g. builders) counts the key signers of the attestations ct verify accepts (ct sign --key A --key B signs with several)')
    .requiredOption('--k <k>', 'signatures required', (v) => Number(v))
    .option('--member <keyid...>', 'member key ids')
    .action(
      action(async (file: string, opts: { group: string; k: number; member?: string[] }) => {
        await edit(file, (s) => setThreshold(s, opts.group, opts.k, opts.member ?? (s.keys[opts.group] ?? []).map((k) => k.id)));
      }),
    );

  ts.command('revoke')
    .argument('<file>', 'trust store')
    .description('add a key id or attestation digest to the revocation list')
    .option('--key <keyid>', 'revoked key id')
    .option('--attestation <digest>', 'revoked attestation digest')
    .action(
      action(async (file: string, opts: { key?: string; attestation?: string }) => {
        if (Boolean(opts.key) === Boolean(opts.attestation)) throw new CtError('USAGE', 'give exactly one of --key and --attestation', {});
        await edit(file, (s) => (opts.key ? revoke(s, 'keys', opts.key) : revoke(s, 'attestations', opts.attestation!)));
      }),
    );

  ts.command('bump')
    .argument('<file>', 'trust store')
    .description('start the next version of a store (version + 1, signatures removed)')
    .action(
      action(async (file: string) => {
        processIo.out(String((await edit(file, (s) => bumpVersion(s))).version));
      }),
    );

  ts.command('show')
    .argument('<file>', 'trust store')
    .description('validate a trust store and print what it trusts')
    .option('--json', 'print JSON')
    .action(
      action(async (file: string, opts: { json?: boolean }) => {
        const s = summary(await loadTrustStore(file), new Date()) as ReturnType<typeof summary> & {
          keys: { id: string; roles: string[]; status: string; validFrom: string; validUntil?: string; owner?: unknown }[];
          logs: { id: string; operator: string; url?: string }[];
          thresholds: Record<string, { k: number; n: number; members: string[] }>;
          signatures: string[];
        };
        if (opts.json) {
          processIo.out(JSON.stringify(s, null, 2));
          return;
        }
        const lines = [`trust store ${String(s.id)}  version ${String(s.version)}  updated ${String(s.updated)}`, `digest ${String(s.digest)}`, 'keys:'];
        for (const k of s.keys) {
          lines.push(`  ${k.id}  ${k.roles.join(',')}  ${k.status}  ${k.validFrom} .. ${k.validUntil ?? '∞'}${k.owner ? `  ${String(k.owner)}` : ''}`);
        }
        lines.push('thresholds:', ...Object.entries(s.thresholds).map(([n, g]) => `  ${n}: ${g.k} of ${g.n} (${g.members.length} members)`));
        lines.push('logs:', ...s.logs.map((l) => `  ${l.id}  ${l.operator}  ${l.url ?? ''}`));
        lines.push(`signatures: ${s.signatures.length ? s.signatures.join(', ') : 'none'}`);
        processIo.out(lines.join('\n'));
      }),
    );

  ts.command('sign')
    .argument('<file>', 'trust store')
    .description('add your signature as a trust-store updater (over the JCS form without signatures)')
    .requiredOption('--key <privkey>', 'Ed25519 private key file or keyring key (CT_KEY_PASSWORD or a prompt when encrypted)')
    .action(
      action(async (file: string, opts: { key: string }) => {
        const priv = await loadPrivateKeyFor(await resolvePrivateKeyPath(keyringDir(), opts.key));
        const signed = signTrustStore(await loadTrustStore(file), priv);
        await saveTrustStore(file, signed);
        processIo.out(signed.signatures!.at(-1)!.keyid);
      }),
    );

  ts.command('update')
    .argument('<current>', 'the trust store in use')
    .argument('<next>', 'the candidate new version')
    .description('verify NEXT against CURRENT (higher version, signed by current updaters) and replace CURRENT with it')
    .option('--json', 'print the verification result as JSON')
    .action(
      action(async (currentFile: string, nextFile: string, opts: { json?: boolean }) => {
        const current = await loadTrustStore(currentFile);
        let nextText: string;
        try {
          nextText = await readFile(nextFile, 'utf8');
        } catch (e) {
          throw asIoError(e, nextFile);
        }
        const next = parseTrustStore(nextText, nextFile);
        const r = verifyTrustStoreUpdate(current, next, new Date());
        // The accepted bytes are installed unchanged, atomically: never a half-written store.
        await writeFileAtomic(currentFile, nextText, 0o644);
        if (opts.json) processIo.out(JSON.stringify(r));
        else processIo.out(`${currentFile}: version ${r.fromVersion} -> ${r.toVersion} (${r.signers.length} of ${r.k} updater signatures)`);
      }),
    );
}
