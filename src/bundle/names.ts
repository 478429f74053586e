import { CtError } from '../core/errors.js';
import type { TarLimits } from './limits.js';

/**
 * Checks an archive entry name against the `.ctp` rules (SPEC §2): relative, `/`-separated, no
 * `./` prefix, no `.` or `..` component, no empty component, no NUL or control characters.
 * Returns the name without the trailing `/` a directory entry carries.
 */
export function checkEntryName(raw: string, where: string, limits: TarLimits, opts: { allowDotSlash?: boolean } = {}): string {
  if (Buffer.byteLength(raw, 'utf8') > limits.maxNameBytes) {
    throw new CtError('TAR_LIMIT_EXCEEDED', `${where}: entry name longer than ${limits.maxNameBytes} bytes`, { where, limit: 'maxNameBytes' });
  }
  let name = raw;
  if (opts.allowDotSlash) {
    while (name.startsWith('./')) name = name.slice(2);
    if (name === '.' || name === '') return '';
  }
  if (name.endsWith('/')) name = name.slice(0, -1);
  const bad = (why: string): never => {
    throw new CtError('TAR_UNSAFE_PATH', `${where}: unsafe entry name ${JSON.stringify(raw).slice(0, 200)} (${why})`, { where, name: raw, reason: why });
  };
  if (name === '') bad('empty name');
  if (name.startsWith('/')) bad('absolute path');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) bad('control character');
  // The outer archive: no C1 control characters and nothing that was not valid UTF-8 (decoded as
  // U+FFFD), so one name has one spelling (layers keep what images hold).
  if (!opts.allowDotSlash && /[\u0080-\u009f\ufffd]/.test(name)) bad('C1 control character or invalid UTF-8');
  if (name.includes('\\')) bad('backslash');
  for (const part of name.split('/')) {
    if (part === '') bad('empty path component');
    if (part === '..') bad('".." component');
    if (part === '.') bad('"." component');
  }
  return name;
}

/** Bytewise comparison of UTF-8 names, the one order every archive we write uses. */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}
