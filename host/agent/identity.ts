import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../src/core/fs.js';
import { publicKeyFrom, spkiBase64 } from '../../src/trust/keyid.js';

export interface HostIdentity {
  privateKey: KeyObject;
  publicKeyB64: string;
  hostId?: string;
  serverPublicKey?: KeyObject;
  /**
   * Highest assignment generation accepted; persisted so a restart can't be downgraded. In
   * enrolment.json as older agents saved it at each assignment; newer ones keep it in the
   * generation record (generation-record.ts), which holds at least this.
   */
  generation: number;
  /**
   * The generation record of this enrolment exists (set once it is made): from then on a missing
   * or damaged record stops the agent instead of being made again from an older generation.
   */
  generationRecord?: boolean;
}

/**
 * What enrolment.json holds. Once the generation record exists, `generation` is written as the
 * largest safe integer: an older agent (which reads only this file) then refuses every
 * assignment as stale instead of accepting replays of generations it never saw (a downgrade
 * needs a new enrolment), and a newer agent reads the record, not this.
 */
interface Saved { hostId: string; serverPublicKey: string; generation: number; generationRecord?: boolean }

/** The `generation` enrolment.json holds once the record took over (see Saved). */
const TAKEN_OVER = Number.MAX_SAFE_INTEGER;

/** The host's Ed25519 key and enrolment record, kept in its state directory (0600). */
export async function loadIdentity(stateDir: string): Promise<HostIdentity> {
  const keyPath = join(stateDir, 'host-key.pem');
  let privateKey: KeyObject;
  if (existsSync(keyPath)) privateKey = createPrivateKey(readFileSync(keyPath));
  else {
    privateKey = generateKeyPairSync('ed25519').privateKey;
    // Durable: the server keeps the public key from enrolment on; a key lost to a power cut would
    // leave the host unable to connect until it is enrolled again.
    await writeFileAtomic(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600, { durable: true });
  }
  const id: HostIdentity = { privateKey, publicKeyB64: spkiBase64(createPublicKey(privateKey)), generation: 0 };
  const recPath = join(stateDir, 'enrolment.json');
  if (existsSync(recPath)) {
    const saved = JSON.parse(readFileSync(recPath, 'utf8')) as Saved;
    id.hostId = saved.hostId;
    id.serverPublicKey = publicKeyFrom(saved.serverPublicKey);
    id.generationRecord = saved.generationRecord === true;
    id.generation = id.generationRecord ? 0 : saved.generation ?? 0;
  }
  return id;
}

/** The enrolment record (written at enrolment, and once more when the generation record is made: see Saved). */
export async function saveIdentity(stateDir: string, id: HostIdentity): Promise<void> {
  const saved: Saved = {
    hostId: id.hostId!,
    serverPublicKey: spkiBase64(id.serverPublicKey!),
    ...(id.generationRecord ? { generation: TAKEN_OVER, generationRecord: true } : { generation: id.generation }),
  };
  // Durable, like the key: an enrolment lost to a power cut spends the one-time token for nothing.
  await writeFileAtomic(join(stateDir, 'enrolment.json'), JSON.stringify(saved, null, 2), 0o600, { durable: true });
}
