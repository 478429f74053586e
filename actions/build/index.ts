import * as core from '@actions/core';
import { coreInputs, coreIo } from './io.js';
import { readBuildInputs } from './inputs.js';
import { run } from './run.js';

// Input errors fail the step like any other: one annotation, exit code 1.
const io = coreIo(core);
try {
  await run(readBuildInputs(coreInputs(core)), io);
} catch (e) {
  io.setFailed(`${(e as { code?: string }).code ?? 'ERROR'}: ${(e as Error).message}`);
}
