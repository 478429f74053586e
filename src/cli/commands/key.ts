import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { action, processIo } from '../io.js';
import { CtError, asIoError } from '../../core/errors.js';
import { importKeyFile, keyringDir, listKeys, readKeyringPem, resolveKey, resolvePublicKey } from '../../trust/keyring.js';
import { isEncryptedPem } from '../../trust/keys.js';
import { canPrompt, passwordFromEnv, promptHidden } from '../../trust/passphrase.js';
import { loadTrustStore, saveTrustStore } from '../../trust/store.js';
import { addKey } from '../../trust/edit.js';

/** `ct key …`: the local keyring ($CT_HOME/keys) and adding its keys to trust stores. */
export function register(program: Command): void {
  const key = program.command('key').description('manage the local keyring ($CT_HOME/keys)');

  key
    .command('list')
    .description('list the keys in the keyring')
    .option('--json', 'print a JSON array')
    .action(
      action(async (opts: { json?: boolean }) => {
        const entries = await listKeys(keyringDir());
        if (opts.json) {
          processIo.out(JSON.stringify(entries));
          return;
        }
        if (entries.length === 0) processIo.err(`no keys in ${keyringDir()}`);
        for (const e of entries) {
          const kind = e.hasPrivate ? (e.encrypted ? 'private (encrypted)' : 'private') : 'public only';
          processIo.out(`${e.id}  ${e.name ?? '-'}  ${e.algorithm}  ${kind}`);
        }
      }),
    );

  key
    .command('import')
    .argument('<file>', 'public key (SPKI PEM) or private key (PKCS#8 PEM, encrypted or not)')
    .description('add a key file to the keyring')
    .option('--name <name>', 'name to refer to the key by')
    .action(
      action(async (file: string, opts: { name?: string }) => {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (e) {
          throw asIoError(e, file);
        }
        // An encrypted private key is stored as is, but its public half needs the password once.
        let password: string | undefined;
        if (isEncryptedPem(text)) {
          password = passwordFromEnv();
          if (!password && canPrompt()) password = await promptHidden(`Password for ${file}: `);
        }
        const entry = await importKeyFile(keyringDir(), file, { name: opts.name, password });
        processIo.out(entry.id);
      }),
    );

  key
    .command('export')
    .argument('<id>', 'key id, unique id prefix or name')
    .description('print a key as PEM (public by default)')
    .option('--public', 'print the public key (SPKI PEM)')
    .option('--private', 'print the private key as stored (encrypted if it is)')
    .action(
      action(async (ref: string, opts: { public?: boolean; private?: boolean }) => {
        if (opts.public && opts.private) throw new CtError('USAGE', 'give --public or --private, not both', {});
        const dir = keyringDir();
        const entry = await resolveKey(dir, ref);
        processIo.out(await readKeyringPem(dir, entry, opts.private ? 'private' : 'public'));
      }),
    );

  key
    .command('trust')
    .argument('<key>', 'key id / name in the keyring, or a public key file')
    .description('add a public key to a trust store under a role')
    .requiredOption('--trust-store <file>', 'trust store to edit')
    .requiredOption('--role <role>', 'role, e.g. builders, releasers, reviewers, deployers, trust-store-updaters')
    .option('--valid-from <date>', 'RFC 3339 start of validity (default: now)')
    .option('--valid-until <date>', 'RFC 3339 end of validity (exclusive)')
    .option('--owner <owner>', 'metadata.owner of the entry (default: the key name)')
    .action(
      action(async (ref: string, opts: { trustStore: string; role: string; validFrom?: string; validUntil?: string; owner?: string }) => {
        const { key: pub, entry } = await resolvePublicKey(keyringDir(), ref);
        const store = await loadTrustStore(opts.trustStore);
        const owner = opts.owner ?? entry?.name;
        const next = addKey(store, opts.role, pub, { validFrom: opts.validFrom, validUntil: opts.validUntil, metadata: owner ? { owner } : undefined });
        await saveTrustStore(opts.trustStore, next);
        if (store.signatures?.length) processIo.err(`note: ${opts.trustStore} was signed; the edit removed its ${store.signatures.length} signature(s)`);
        processIo.out(next.keys[opts.role].at(-1)!.id);
      }),
    );
}
