import { readFile } from 'node:fs/promises';
import { CtError, asIoError } from '../core/errors.js';
import { writeFileAtomic } from '../core/fs.js';
import type { CheckpointMemory, RememberedCheckpoint } from './witness.js';

interface FileShape {
  version: 1;
  logs: Record<string, RememberedCheckpoint>;
}

function isRemembered(v: unknown): v is RememberedCheckpoint {
  const c = v as RememberedCheckpoint;
  return typeof c === 'object' && c !== null && typeof c.origin === 'string' && Number.isSafeInteger(c.treeSize) && c.treeSize >= 0 &&
    typeof c.rootHash === 'string' && /^[0-9a-f]{64}$/.test(c.rootHash) && typeof c.seenAt === 'string';
}

/**
 * Checkpoint memory in one JSON file (`{version:1, logs:{id: checkpoint}}`), for the CLI. Writes
 * are atomic (temp + rename) and serialised within the process; a missing file is empty memory,
 * a corrupt one is an error (forgetting would let a forked log through).
 */
export class JsonFileCheckpointMemory implements CheckpointMemory {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  private async load(): Promise<FileShape> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, logs: {} };
      throw asIoError(e, this.path);
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new CtError('JSON_INVALID', `${this.path}: checkpoint memory is not JSON`, { path: this.path }, { cause: e });
    }
    const f = v as FileShape;
    if (typeof f !== 'object' || f === null || f.version !== 1 || typeof f.logs !== 'object' || f.logs === null || !Object.values(f.logs).every(isRemembered)) {
      throw new CtError('JSON_INVALID', `${this.path}: not a checkpoint memory file (version 1)`, { path: this.path });
    }
    return f;
  }

  async get(logId: string): Promise<RememberedCheckpoint | undefined> {
    await this.chain.catch(() => undefined);
    const f = await this.load();
    return Object.hasOwn(f.logs, logId) ? f.logs[logId] : undefined;
  }

  put(logId: string, cp: RememberedCheckpoint): Promise<void> {
    const next = this.chain.catch(() => undefined).then(async () => {
      const f = await this.load();
      f.logs[logId] = cp;
      await writeFileAtomic(this.path, `${JSON.stringify(f, null, 2)}\n`, 0o600);
    });
    this.chain = next;
    return next;
  }
}
