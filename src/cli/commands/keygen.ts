import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { generateKeyPair, privateKeyPem, publicKeyPem, writeKeyPair } from '../../trust/keys.js';
import { passwordForNewKey } from '../../trust/passphrase.js';
import { addToKeyring, keyringDir, keyringPaths } from '../../trust/keyring.js';

interface KeygenOptions {
  out?: string;
  password: boolean; // false with --no-password
  name?: string;
  force?: boolean;
  json?: boolean;
}

/**
 * `ct keygen`: a new Ed25519 key pair, either as PREFIX.key / PREFIX.pub (--out) or in the
 * keyring. The key id goes to stdout (the one thing scripts need); paths go to stderr.
 */
export function register(program: Command): void {
  program
    .command('keygen')
    .description('generate an Ed25519 signing key pair (private key encrypted unless --no-password)')
    .option('--out <prefix>', 'write <prefix>.key and <prefix>.pub instead of adding the key to the keyring')
    .option('--no-password', 'write the private key unencrypted (no CT_KEY_PASSWORD, no prompt)')
    .option('--name <name>', 'name of the key in the keyring')
    .option('--force', 'replace existing <prefix>.key / <prefix>.pub')
    .option('--json', 'print {id, privateKey, publicKey, encrypted} as JSON')
    .action(
      action(async (opts: KeygenOptions) => {
        const password = await passwordForNewKey(!opts.password);
        const pair = generateKeyPair('ed25519');
        let privatePath: string;
        let publicPath: string;
        if (opts.out) {
          ({ privatePath, publicPath } = await writeKeyPair(opts.out, pair, password, Boolean(opts.force)));
        } else {
          const dir = keyringDir();
          await addToKeyring(dir, { publicPem: publicKeyPem(pair.publicKey), privatePem: privateKeyPem(pair.privateKey, password), name: opts.name });
          ({ key: privatePath, pub: publicPath } = keyringPaths(dir, pair.keyId));
        }
        if (opts.json) {
          processIo.out(JSON.stringify({ id: pair.keyId, privateKey: privatePath, publicKey: publicPath, encrypted: Boolean(password) }));
        } else {
          processIo.out(pair.keyId);
          processIo.err(`private key: ${privatePath}${password ? ' (encrypted)' : ' (NOT encrypted)'}\npublic key:  ${publicPath}`);
        }
      }),
    );
}
