/**
 * The unpack thread (index.ts): extracts the layers it is given into a root filesystem with
 * applyLayerRefs (the same checks, hashing and rename-into-place as in the calling thread), reading
 * each layer from the `.ctp` file by its offset, and answers with the result or the error's code.
 * Its own small heap: 50 MiB of chunks passing through do not trigger full collections of the
 * agent's large heap, and the agent's thread stays free while the layer is hashed and written.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import { CtError } from '../../core/errors.js';
import { applyLayerRefs, type LayerRef } from '../apply-layers.js';
import type { UnpackTask } from './index.js';

function refOf(path: string, l: UnpackTask['layers'][number]): LayerRef {
  const open = (): Readable => {
    if (l.data) return Readable.from([Buffer.from(l.data.buffer, l.data.byteOffset, l.data.byteLength)]);
    if (l.size === 0) return Readable.from([]);
    return createReadStream(path, { start: l.dataOffset, end: l.dataOffset + l.size - 1, highWaterMark: 1 << 20 });
  };
  return { digest: l.digest, size: l.size, open };
}

parentPort?.on('message', (m: { id: number; task: UnpackTask }) => {
  const { path, layers, rootfsDir, limits } = m.task;
  applyLayerRefs(layers.map((l) => refOf(path, l)), rootfsDir, { limits }).then(
    (ok) => parentPort?.postMessage({ id: m.id, ok }),
    (e: unknown) => {
      const err = e instanceof CtError ? { code: e.code, message: e.message, details: e.details } : { code: 'IO_ERROR', message: (e as Error)?.message ?? String(e), details: {} };
      parentPort?.postMessage({ id: m.id, err });
    },
  );
});
