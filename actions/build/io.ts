/**
 * What an action does to the runner, as an interface: the logic (run.ts of each action) reports
 * through it and is tested with a recording implementation; only the entry files hand it the real
 * `@actions/core` (coreIo), so `@actions/core` is imported at the entries alone.
 */
import type * as Core from '@actions/core';
import { terminalText } from '../../src/core/terminal.js';

export interface ActionIo {
  /** Masks a value in every later log line (tokens, keys, passwords). */
  setSecret(value: string): void;
  setOutput(name: string, value: string): void;
  info(message: string): void;
  warning(message: string): void;
  /** Fails the step: one `::error` annotation and exit code 1. */
  setFailed(message: string): void;
  /** Appends Markdown to the job summary (GITHUB_STEP_SUMMARY); no-op outside a runner. */
  summary(markdown: string): Promise<void>;
  /** An OIDC token for `audience` from the Actions token endpoint (masked by the implementation). */
  idToken(audience: string): Promise<string>;
}

/**
 * A log line as the runner will read it: `core.info` writes its text as is, and a line that starts
 * with `::` is a workflow command to the runner (add a mask, stop commands, set an output, an
 * annotation). Text from outside (a registry's or a server's words in a message) must not become
 * one: such a line start is written `: :`, and control characters are escaped (terminalText).
 * `core.warning` and `core.setFailed` escape their message themselves.
 */
export function logLine(text: string): string {
  return terminalText(text).replace(/^(\s*)::/gm, '$1: :');
}

/** Reads one input by its action.yml name ('' when unset, as the runner leaves it). */
export type InputReader = (name: string) => string;

/** The runner implementation over `@actions/core`, which the entry passes in. */
export function coreIo(core: typeof Core): ActionIo {
  return {
    setSecret: (v) => {
      if (v) core.setSecret(v);
    },
    setOutput: (n, v) => core.setOutput(n, v),
    info: (m) => core.info(logLine(m)),
    warning: (m) => core.warning(m),
    setFailed: (m) => core.setFailed(m),
    summary: async (md) => {
      if (!process.env.GITHUB_STEP_SUMMARY) return;
      await core.summary.addRaw(md, true).write();
    },
    idToken: (aud) => core.getIDToken(aud),
  };
}

/** Input reader over `@actions/core` (trimmed values, '' when unset). */
export function coreInputs(core: typeof Core): InputReader {
  return (name) => core.getInput(name);
}
