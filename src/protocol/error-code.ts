/**
 * Error codes that cross a trust boundary (a host's answer, the deploy server's error body) are
 * kept only when shaped like a code: a host could otherwise put an instruction, or 64 characters
 * of anything, where agents and dashboards expect a stable identifier.
 */
export const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,63}$/;

export function errorCode(code: unknown, fallback = 'RUNTIME_FAILED'): string {
  return typeof code === 'string' && ERROR_CODE.test(code) ? code : fallback;
}
