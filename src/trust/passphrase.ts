/**
 * Where key passwords come from: the CT_KEY_PASSWORD environment variable, else an interactive
 * prompt — only when stdin is a terminal. With no terminal nothing is ever prompted (CI, pipes),
 * so a missing password is an error the caller reports, never a hang.
 */
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CtError, asIoError } from '../core/errors.js';
import { isEncryptedPem, parsePrivateKey } from './keys.js';

export const PASSWORD_ENV = 'CT_KEY_PASSWORD';

export function passwordFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[PASSWORD_ENV];
  return v ? v : undefined;
}

export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY);
}

/**
 * Reads one line from the terminal without echoing it. Hand-written because node:readline has no
 * hidden-input mode; raw mode lets us drop the echo and still handle backspace and Ctrl-C.
 */
export function promptHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  const output = process.stderr;
  output.write(prompt);
  input.setRawMode(true);
  input.setEncoding('utf8');
  input.resume();
  return new Promise((resolve, reject) => {
    let value = '';
    const finish = (): void => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      output.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new CtError('KEY_PASSWORD_REQUIRED', 'password prompt cancelled', { reason: 'cancelled' }));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    input.on('data', onData);
  });
}

/**
 * Password for a NEW private key: CT_KEY_PASSWORD, else asked twice on a terminal. Returns
 * undefined only when the caller allows an unencrypted key (`--no-password`).
 */
export async function passwordForNewKey(allowNone: boolean): Promise<string | undefined> {
  if (allowNone) return undefined;
  const fromEnv = passwordFromEnv();
  if (fromEnv) return fromEnv;
  if (!canPrompt()) {
    throw new CtError('KEY_PASSWORD_REQUIRED', `no password: set ${PASSWORD_ENV}, run in a terminal, or pass --no-password for an unencrypted key`, { reason: 'missing' });
  }
  const first = await promptHidden('Password for the new key: ');
  if (!first) throw new CtError('KEY_PASSWORD_REQUIRED', 'empty password (pass --no-password for an unencrypted key)', { reason: 'missing' });
  const second = await promptHidden('Repeat the password: ');
  if (first !== second) throw new CtError('KEY_PASSWORD_REQUIRED', 'the passwords differ', { reason: 'mismatch' });
  return first;
}

/** Loads a private key file, asking for its password only when it is encrypted. */
export async function loadPrivateKeyFor(path: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (e) {
    throw asIoError(e, path);
  }
  let password: string | undefined;
  if (isEncryptedPem(pem)) {
    password = passwordFromEnv();
    if (!password && canPrompt()) password = await promptHidden(`Password for ${path}: `);
  }
  return parsePrivateKey(pem, password, path);
}
