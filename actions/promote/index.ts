import * as core from '@actions/core';
import { coreInputs, coreIo } from '../build/io.js';
import { readPromoteInputs } from './inputs.js';
import { run } from './run.js';

const io = coreIo(core);
try {
  await run(readPromoteInputs(coreInputs(core)), io);
} catch (e) {
  io.setFailed(`${(e as { code?: string }).code ?? 'ERROR'}: ${(e as Error).message}`);
}
