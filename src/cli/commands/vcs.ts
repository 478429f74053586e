/**
 * `ct vcs …`: the VCS conformance runner contract (reference/…/conformance/runner/cli-contract.json),
 * exactly: validate, verify, create-bundle, sign, canonicalize, verify-proof; JSON on stdout; exit
 * 0 (ok), 1 (invalid / REJECT), 2 (error). Beyond the contract: `verify --policy P` (Svalinn v1)
 * and `verify --legacy-pae` (accept the upstream MVP producer's PAE, reported as "legacy").
 */
import type { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CtError, asIoError } from '../../core/errors.js';
import { canonicalize } from '../../core/jcs.js';
import { isDigest, sha256Digest } from '../../core/digest.js';
import { writeFileAtomic } from '../../core/fs.js';
import { assertEnvelope, type DsseEnvelope } from '../../attest/dsse.js';
import { assertStatement } from '../../attest/statement.js';
import { signStatement } from '../../attest/sign.js';
import { processIo } from '../io.js';
import { buildVcsBundle, vcsBundleBytes, type VcsLogEntry } from '../../attest/vcs-bundle.js';
import { parseTrustStore, trustStoreDigest } from '../../trust/store.js';
import { parsePrivateKey } from '../../trust/keys.js';
import { passwordFromEnv } from '../../trust/passphrase.js';
import { verifyInclusion } from '../../tlog/verify-proofs.js';
import { hashFromHex } from '../../tlog/record.js';
import type { Mode } from '../../verify/evidence.js';
import { DOCUMENT_TYPES, validateDocument, validatorFor, schemaErrors, type DocumentType } from '../../verify/vcs/schemas.js';
import { verifyVcsBundle } from '../../verify/vcs/verify-bundle.js';
import { parseSvalinnPolicyText } from '../../verify/vcs/svalinn-v1.js';

const MODES: Mode[] = ['strict', 'permissive', 'audit'];

/** Exit 2 of the contract: the command could not do its job (bad arguments, unreadable files). */
class RunnerError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

function out(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

/** Runs a contract command: its body returns the exit code; an error is exit 2 with JSON. */
function runner<A extends unknown[]>(body: (...args: A) => Promise<number>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = await body(...args);
    } catch (e) {
      const code = e instanceof CtError || e instanceof RunnerError ? e.code : 'ERROR';
      const message = e instanceof Error ? e.message : String(e);
      out({ error: { code, message } });
      processIo.err(`error[${code}]: ${message}`);
      process.exitCode = 2;
    }
  };
}

function need(v: string | undefined, flag: string): string {
  if (v === undefined || v === '') throw new RunnerError('USAGE', `${flag} is required`);
  return v;
}

async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw asIoError(e, path);
  }
}

function parseJsonOr(text: Buffer, path: string): unknown {
  try {
    return JSON.parse(text.toString('utf8'));
  } catch (e) {
    throw new CtError('JSON_INVALID', `${path}: not JSON (${(e as Error).message})`, { path });
  }
}

function common(cmd: Command): Command {
  return cmd.option('--json', 'JSON output (the default)').option('--verbose', 'verbose output');
}

export function register(program: Command): void {
  const vcs = program.command('vcs').description('VCS conformance runner commands (JSON on stdout; exit 0 ok, 1 invalid/REJECT, 2 error)');

  common(vcs.command('validate').description('validate a document against its schema'))
    .option('--type <type>', `document type: ${DOCUMENT_TYPES.join(' | ')}`)
    .option('--input <file>', 'JSON file to validate')
    .action(
      runner(async (o: { type?: string; input?: string }) => {
        const type = need(o.type, '--type');
        if (!(DOCUMENT_TYPES as readonly string[]).includes(type)) throw new RunnerError('USAGE', `--type must be one of ${DOCUMENT_TYPES.join(', ')}`);
        const input = need(o.input, '--input');
        const doc = parseJsonOr(await readBytes(input), input);
        const r = validateDocument(type as DocumentType, doc);
        out(r.valid ? { valid: true, ...(r.warnings.length ? { warnings: r.warnings } : {}) } : { valid: false, errors: r.errors });
        return r.valid ? 0 : 1;
      }),
    );

  common(vcs.command('verify').description('verify an attestation bundle against a trust store'))
    .option('--bundle <file>', 'attestation bundle JSON')
    .option('--trust-store <file>', 'trust store JSON')
    .option('--image-digest <digest>', 'expected image digest (sha256:…); default: the first subject of the first attestation')
    .option('--mode <mode>', 'strict | permissive | audit (default: the policy\'s mode, else strict)')
    .option('--policy <file>', 'Svalinn v1 policy JSON (requiredPredicates, allowedSigners, logQuorum, mode)')
    .option('--legacy-pae', 'also accept signatures over the legacy PAE of the upstream MVP producer (reported)')
    .action(
      runner(async (o: { bundle?: string; trustStore?: string; imageDigest?: string; mode?: string; policy?: string; legacyPae?: boolean }) => {
        const bundlePath = need(o.bundle, '--bundle');
        const storePath = need(o.trustStore, '--trust-store');
        if (o.mode !== undefined && !(MODES as string[]).includes(o.mode)) throw new RunnerError('USAGE', `--mode must be one of ${MODES.join(', ')}`);
        if (o.imageDigest !== undefined && !isDigest(o.imageDigest)) throw new RunnerError('USAGE', '--image-digest must be sha256:<64 lowercase hex>');
        const bytes = await readBytes(bundlePath);
        const store = parseTrustStore((await readBytes(storePath)).toString('utf8'), storePath);
        const policy = o.policy ? parseSvalinnPolicyText((await readBytes(o.policy)).toString('utf8'), o.policy) : undefined;
        const mode = (o.mode as Mode | undefined) ?? policy?.mode ?? 'strict';
        const r = verifyVcsBundle(bytes, {
          trust: { store, storeDigest: trustStoreDigest(store) },
          ...(o.imageDigest ? { imageDigest: o.imageDigest } : {}),
          mode,
          ...(policy ? { requirements: policy.requirements, policyDigest: policy.digest } : {}),
          allowLegacyPae: Boolean(o.legacyPae),
        });
        const warnings = [...(policy?.warnings ?? []), ...r.warnings];
        if (r.decision === 'ALLOW') {
          out({
            decision: 'ALLOW',
            attestationsVerified: r.attestationsVerified,
            logEntriesVerified: r.logEntriesVerified,
            thresholdsMet: r.thresholdsMet,
            mode,
            imageDigest: r.record.imageDigest,
            ...(r.legacyPae ? { legacyPae: true, pae: 'legacy' } : {}),
            ...(r.code ? { auditCode: r.code } : {}),
            ...(warnings.length ? { warnings } : {}),
          });
          return 0;
        }
        out({ decision: 'REJECT', errorCode: r.code, message: r.message, mode, ...(warnings.length ? { warnings } : {}) });
        return 1;
      }),
    );

  common(vcs.command('create-bundle').description('create an attestation bundle from envelopes and log entries'))
    .option('--attestations <file>', 'JSON array of DSSE envelopes')
    .option('--log-entries <file>', 'JSON array of log entries')
    .option('--output <file>', 'where to write the bundle')
    .action(
      runner(async (o: { attestations?: string; logEntries?: string; output?: string }) => {
        const attPath = need(o.attestations, '--attestations');
        const logPath = need(o.logEntries, '--log-entries');
        const output = need(o.output, '--output');
        const errors: { path: string; message: string }[] = [];
        let atts: unknown;
        let entries: unknown;
        try {
          atts = parseJsonOr(await readBytes(attPath), attPath);
          entries = parseJsonOr(await readBytes(logPath), logPath);
        } catch (e) {
          if (e instanceof CtError && e.code === 'JSON_INVALID') {
            out({ created: false, errors: [{ path: '$', message: e.message }] });
            return 1;
          }
          throw e;
        }
        if (!Array.isArray(atts)) errors.push({ path: '$.attestations', message: 'must be a JSON array of DSSE envelopes' });
        else atts.forEach((a, i) => {
          try {
            assertEnvelope(a, `$.attestations[${i}]`);
          } catch (e) {
            errors.push({ path: `$.attestations[${i}]`, message: (e as Error).message });
          }
        });
        if (!Array.isArray(entries)) errors.push({ path: '$.logEntries', message: 'must be a JSON array of log entries' });
        if (errors.length === 0) {
          const b = buildVcsBundle(atts as DsseEnvelope[], entries as VcsLogEntry[], { producer: 'cerro-torre', producerVersion: '0.1.0', createdAt: new Date().toISOString() });
          const v = validatorFor('attestation-bundle');
          if (!v(b)) errors.push(...schemaErrors(v.errors));
          else {
            const bytes = vcsBundleBytes(b);
            await writeFileAtomic(output, bytes);
            out({ created: true, bundleDigest: sha256Digest(bytes), path: resolve(output) });
            return 0;
          }
        }
        out({ created: false, errors });
        return 1;
      }),
    );

  common(vcs.command('sign').description('sign an in-toto statement into a DSSE envelope (Ed25519, standard PAE)'))
    .option('--statement <file>', 'in-toto v1 statement JSON')
    .option('--key <file>', 'Ed25519 private key (PEM; encrypted keys read CT_KEY_PASSWORD)')
    .option('--output <file>', 'where to write the DSSE envelope')
    .action(
      runner(async (o: { statement?: string; key?: string; output?: string }) => {
        const stPath = need(o.statement, '--statement');
        const keyPath = need(o.key, '--key');
        const output = need(o.output, '--output');
        let env: DsseEnvelope;
        try {
          const st = parseJsonOr(await readBytes(stPath), stPath);
          assertStatement(st, stPath);
          const key = parsePrivateKey((await readBytes(keyPath)).toString('utf8'), passwordFromEnv(), keyPath);
          env = signStatement(st, key);
        } catch (e) {
          if (e instanceof CtError && e.code !== 'IO_ERROR') {
            out({ signed: false, errors: [{ path: '$', message: e.message, code: e.code }] });
            return 1;
          }
          throw e;
        }
        const bytes = Buffer.from(`${JSON.stringify(env, null, 2)}\n`);
        await writeFileAtomic(output, bytes);
        out({ signed: true, keyid: env.signatures[0].keyid, path: resolve(output) });
        return 0;
      }),
    );

  common(vcs.command('canonicalize').description('print or write the JCS (RFC 8785) form of a JSON document'))
    .option('--input <file>', 'JSON file')
    .option('--output <file>', 'write here instead of stdout')
    .action(
      runner(async (o: { input?: string; output?: string }) => {
        const input = need(o.input, '--input');
        const bytes = await readBytes(input);
        let text: string;
        try {
          text = canonicalize(JSON.parse(bytes.toString('utf8')));
        } catch (e) {
          processIo.err(`error[JSON_INVALID]: ${input}: ${(e as Error).message}`);
          return 1;
        }
        if (o.output) await writeFileAtomic(o.output, text);
        else process.stdout.write(text);
        return 0;
      }),
    );

  common(vcs.command('verify-proof').description('verify a Merkle inclusion proof for a leaf hash'))
    .option('--proof <file>', 'inclusion proof JSON ({logIndex, treeSize, rootHash, hashes}, or a log entry holding inclusionProof)')
    .option('--leaf-hash <hex>', 'leaf hash (64 hex, optionally sha256:-prefixed)')
    .action(
      runner(async (o: { proof?: string; leafHash?: string }) => {
        const proofPath = need(o.proof, '--proof');
        const leaf = hashFromHex(need(o.leafHash, '--leaf-hash').toLowerCase());
        if (!leaf) throw new RunnerError('USAGE', '--leaf-hash must be 64 hex characters');
        const doc = parseJsonOr(await readBytes(proofPath), proofPath) as Record<string, unknown>;
        const proof = (doc && typeof doc === 'object' && 'inclusionProof' in doc ? doc.inclusionProof : doc) as Record<string, unknown>;
        const v = validatorFor('inclusion-proof');
        if (!v(proof)) throw new RunnerError('MALFORMED_BUNDLE', `${proofPath}: not an inclusion proof: ${schemaErrors(v.errors).map((e) => `${e.path} ${e.message}`).join('; ')}`);
        const p = proof as { logIndex: number; treeSize: number; rootHash: string; hashes: string[] };
        const ok = verifyInclusion(leaf, p.logIndex, p.treeSize, p.hashes.map((h) => hashFromHex(h)!), hashFromHex(p.rootHash)!);
        out({ valid: ok, logIndex: p.logIndex, treeSize: p.treeSize, rootHash: p.rootHash });
        return ok ? 0 : 1;
      }),
    );
}
