/**
 * One MCP tool: a name, a JSON-schema'd input and output (zod shapes the SDK turns into JSON
 * Schema and validates against), whether it reads or acts, and what it does. The same definitions
 * serve the deploy server's `/mcp` and `ct mcp` (stdio).
 */
import type { ZodRawShape } from 'zod';
import { CtError } from '../core/errors.js';
import { errorCode } from '../protocol/error-code.js';

export type ToolKind = 'read' | 'act';

export interface ToolDef {
  name: string;
  title: string;
  description: string;
  kind: ToolKind;
  input: ZodRawShape;
  output: ZodRawShape;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- arguments were validated against `input` by the SDK
  run(args: any): Promise<Record<string, unknown>>;
}

/**
 * A tool's refusal: a stable code (the API's, or the library's), a bounded message and what the
 * API's error said besides (`details`: where a proposed policy does not compile), for the agent to act on.
 */
export class ToolError extends Error {
  constructor(readonly code: string, message: string, readonly details?: Record<string, unknown>) {
    super(message.slice(0, 1000));
  }
}

/**
 * Any failure as `{code, message}`, never a stack trace and never longer than 1,000 characters.
 * A code that came from the API may be a host's: kept only when shaped like a code.
 */
export function toolFailure(e: unknown): { code: string; message: string; details?: Record<string, unknown> } {
  if (e instanceof ToolError) return { code: errorCode(e.code), message: e.message, ...(e.details ? { details: e.details } : {}) };
  if (e instanceof CtError) return { code: e.code, message: e.message.slice(0, 1000) };
  return { code: 'INTERNAL', message: 'the tool failed' };
}
