/**
 * `ct sign BUNDLE.ctp`: attests a .ctp (SLSA provenance and SPDX by default, or the predicates
 * given), records every attestation in every --log, and writes attestations/bundle.json into it.
 */
import type { Command } from 'commander';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { lstat, readFile, realpath, stat } from 'node:fs/promises';
import { refuseExistingOutput } from '../../core/fs.js';
import { action, processIo } from '../io.js';
import { timeoutOption } from '../../core/timeout-option.js';
import { CtError, asIoError } from '../../core/errors.js';
import { loadPrivateKey } from '../../trust/keys.js';
import { keyIdOf } from '../../trust/keyid.js';
import { keyringDir, resolvePrivateKeyPath } from '../../trust/keyring.js';
import { DEFAULT_REQUIREMENTS } from '../../verify/report.js';
import { trustedLog } from '../../verify/vcs/logs.js';
import { loadPrivateKeyFor } from '../../trust/passphrase.js';
import { loadTrustStore } from '../../trust/store.js';
import type { TrustStore } from '../../trust/types.js';
import type { LogEndpoint } from '../../tlog/client.js';
import { signCtp, type PredicateInput } from '../../attest/sign-ctp.js';

interface SignOptions {
  key: string[];
  passwordEnv?: string;
  log: string[];
  predicate: string[];
  predicateType: string[];
  out?: string;
  trustStore?: string;
  timeout?: string;
  json?: boolean;
  force?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** More signers than any threshold group needs; bounds the prompts and the envelope size. */
const MAX_KEYS = 16;

/**
 * Which log a --log value names: `ID=URL`; a URL the trust store lists; else the id the log
 * itself reports (its /api/v1/revocations answer names it).
 */
async function resolveLog(value: string, store: TrustStore | undefined, timeoutMs: number): Promise<LogEndpoint> {
  const eq = /^([A-Za-z0-9._-]+)=(https?:\/\/.+)$/.exec(value);
  const url = eq ? eq[2] : value;
  if (!/^https?:\/\//.test(url)) throw new CtError('USAGE', `--log ${value}: not an http(s) URL (or ID=URL)`, { value });
  const norm = (u: string) => u.replace(/\/+$/, '');
  const fromStore = Object.entries(store?.logs ?? {}).find(([id, l]) => (eq ? id === eq[1] : l.url !== undefined && norm(l.url) === norm(url)));
  const withKey = (id: string): LogEndpoint => {
    const l = store?.logs?.[id];
    return { id, url, ...(l ? { publicKey: l.publicKey, operator: l.operator } : {}) };
  };
  if (eq) return withKey(eq[1]);
  if (fromStore) return withKey(fromStore[0]);
  let res: Response;
  try {
    res = await fetch(`${norm(url)}/api/v1/revocations`, { signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    // Unreachable: naming its id would not help (the entry is recorded there all the same).
    const why = (e as { cause?: { code?: string; message?: string } }).cause;
    throw new CtError('NETWORK_ERROR', `--log ${url}: the log is not reachable (${why?.code ?? why?.message ?? (e as Error).message}); is it running, and is the URL right?`, { url });
  }
  try {
    const body = (await res.json()) as { logId?: unknown };
    if (typeof body.logId === 'string' && body.logId) return { id: body.logId, url };
  } catch (e) {
    throw new CtError('NETWORK_ERROR', `--log ${url}: cannot learn the log's id (HTTP ${res.status}, ${(e as Error).message}); give it as ID=URL`, { url });
  }
  throw new CtError('NETWORK_ERROR', `--log ${url}: the log did not say its id; give it as ID=URL`, { url });
}

/**
 * Where the signed bundle goes. Signing in place (no --out, or an --out that resolves to the input:
 * `./x.ctp`, a symbolic link to it) writes over the input file itself, its real path: through a
 * link, the link's target is signed and the link left as it is. An --out that is another hard link
 * to the input is refused (USAGE): the new file replaces one name and the other keeps the unsigned
 * bytes, whichever of the two was meant. Any other --out: refuseExistingOutput, and `replace` only
 * with --force.
 */
async function signTarget(input: string, out: string | undefined, force: boolean | undefined): Promise<{ out: string; replace: boolean }> {
  const real = () => realpath(input).catch((e) => Promise.reject(asIoError(e, input)));
  // The input's own name unless it is a link (the rename replaces a name, never follows it).
  const inPlace = async () => ((await lstat(input).catch((e) => Promise.reject(asIoError(e, input)))).isSymbolicLink() ? real() : input);
  if (out === undefined) return { out: await inPlace(), replace: true };
  const [a, b] = await Promise.all([input, out].map((p) => stat(p).catch(() => undefined)));
  if (a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino) {
    if ((await realpath(out).catch(() => undefined)) === (await real())) return { out: await inPlace(), replace: true };
    throw new CtError('USAGE', `--out ${out}: another hard link to ${input}; sign in place (no --out) or give a new file name`, { path: out });
  }
  await refuseExistingOutput(out, force);
  return { out, replace: !!force };
}

export function register(program: Command): void {
  program
    .command('sign')
    .description('attest a .ctp: sign in-toto statements, record them in transparency logs, write attestations/bundle.json')
    .argument('<bundle>', '.ctp file')
    .option('--key <key>', 'Ed25519 private key: a PEM file, or a keyring key\'s name or id (ct keygen, ct key list); repeat to sign with several keys (a k-of-n threshold group)', collect, [])
    .option('--password-env <var>', 'environment variable holding the key password (default CT_KEY_PASSWORD, else a prompt)')
    .option('--log <url>', 'transparency log URL or ID=URL (repeat for several logs)', collect, [])
    .option('--predicate <file>', 'predicate JSON (repeat; pairs with --predicate-type in order)', collect, [])
    .option('--predicate-type <uri>', 'predicate type URI for the --predicate at the same position', collect, [])
    .option('-o, --out <file>', 'write the signed bundle here (default: replace the input); another file already there is refused unless --force')
    .option('--force', 'replace an existing --out that is not the input')
    .option('--trust-store <file>', 'trust store naming the logs (ids, keys to check the logs\' answers)')
    .option('--timeout <ms>', 'per-log request timeout (default 20000)')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (bundle: string, o: SignOptions) => {
        if (o.key.length === 0) throw new CtError('USAGE', 'ct sign needs --key', {});
        if (o.key.length > MAX_KEYS) throw new CtError('USAGE', `${o.key.length} --key: at most ${MAX_KEYS}`, {});
        if (o.log.length === 0) throw new CtError('USAGE', 'ct sign needs at least one --log', {});
        if (o.predicate.length !== o.predicateType.length) {
          throw new CtError('USAGE', `${o.predicate.length} --predicate but ${o.predicateType.length} --predicate-type: give them in pairs`, {});
        }
        const target = await signTarget(bundle, o.out, o.force);
        const timeoutMs = o.timeout === undefined ? 20_000 : timeoutOption(o.timeout);
        // A key file, or a key of the keyring by name or id (what `ct keygen` makes), as ct trust-store sign takes.
        const keys: KeyObject[] = [];
        const ids = new Set<string>();
        for (const k of o.key) {
          const keyPath = await resolvePrivateKeyPath(keyringDir(), k);
          const key = o.passwordEnv ? await loadPrivateKey(keyPath, process.env[o.passwordEnv]) : await loadPrivateKeyFor(keyPath);
          // One key twice is one signer: a threshold counts it once, so a second signature only misleads.
          const id = keyIdOf(createPublicKey(key));
          if (ids.has(id)) throw new CtError('USAGE', `--key ${k}: the same key (${id}) is given twice`, { keyId: id });
          ids.add(id);
          keys.push(key);
        }
        const predicates: PredicateInput[] = [];
        for (const [i, file] of o.predicate.entries()) {
          let text: string;
          try {
            text = await readFile(file, 'utf8');
          } catch (e) {
            throw asIoError(e, file);
          }
          let predicate: unknown;
          try {
            predicate = JSON.parse(text);
          } catch (e) {
            throw new CtError('JSON_INVALID', `${file}: not JSON (${(e as Error).message})`, { path: file });
          }
          if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$/.test(o.predicateType[i])) throw new CtError('USAGE', `--predicate-type ${o.predicateType[i]}: not a URI`, {});
          predicates.push({ type: o.predicateType[i], predicate });
        }
        const store = o.trustStore ? await loadTrustStore(o.trustStore) : undefined;
        const logs = await Promise.all(o.log.map((l) => resolveLog(l, store, timeoutMs)));
        const r = await signCtp(bundle, { key: keys[0], alsoKeys: keys.slice(1), logs, ...(predicates.length ? { predicates } : {}), out: target.out, replace: target.replace, timeoutMs });
        if (o.json) processIo.out(JSON.stringify(r, null, 2));
        else {
          processIo.out(r.bundleDigest);
          processIo.err(`signed ${r.out}: ${r.attestations.map((a) => a.predicateType).join(', ')}`);
          for (const l of r.logs) processIo.err(`  log ${l.id} (${l.url}): ${l.ok ? 'recorded' : `FAILED ${l.message}`}`);
        }
        // Signed but not verifiable as things stand: say so now, not at the first ct verify. With the
        // trust store known, counted as verify counts: distinct operators of the logs it lists.
        const okLogs = r.logs.filter((l) => l.ok);
        const recorded = store ? new Set(okLogs.map((l) => trustedLog(store, l.id)?.operator).filter((op) => op !== undefined)).size : okLogs.length;
        if (recorded < DEFAULT_REQUIREMENTS.logQuorum) {
          const what = store ? `log operator${recorded === 1 ? '' : 's'} the trust store lists` : `log${recorded === 1 ? '' : 's'} (not knowing their operators without --trust-store)`;
          processIo.err(`warning: recorded by ${recorded} distinct ${what}; ct verify asks for ${DEFAULT_REQUIREMENTS.logQuorum} distinct log operators by default (INSUFFICIENT_LOG_COVERAGE): sign into logs of more operators, or verify with --log-quorum ${Math.max(1, recorded)} (or logQuorum in the policy)`);
        }
        return 0;
      }),
    );
}
