import { spawn } from 'node:child_process';

export interface AppArmorLint {
  /** False when apparmor_parser is not installed: nothing was checked. */
  linted: boolean;
  ok: boolean;
  /** Profile names the parser found in the text (`apparmor_parser -N`). */
  names: string[];
  /** Parser diagnostics (first lines), when not ok. */
  diagnostics: string;
}

function run(args: string[], input: string): Promise<{ code: number | null; stdout: string; stderr: string; missing: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('apparmor_parser', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (e: NodeJS.ErrnoException) => resolve({ code: null, stdout, stderr: e.message, missing: e.code === 'ENOENT' }));
    child.on('close', (code) => resolve({ code, stdout, stderr, missing: false }));
    child.stdin.on('error', () => {});
    child.stdin.end(input);
  });
}

/** Noise the parser prints on kernels without AppArmor; not a diagnostic about the profile. */
const NOISE = /^Cache read\/write disabled.*$/gm;

/**
 * Compiles the profile without loading it (`apparmor_parser -Q -K`: skip kernel load, skip cache)
 * and lists its profile names (`-N`). Works on kernels without AppArmor.
 */
export async function lintAppArmor(text: string): Promise<AppArmorLint> {
  const compiled = await run(['-Q', '-K', '-q'], text);
  if (compiled.missing) return { linted: false, ok: false, names: [], diagnostics: 'apparmor_parser is not installed' };
  const diagnostics = compiled.stderr.replace(NOISE, '').trim().split('\n').slice(0, 10).join('\n');
  if (compiled.code !== 0) return { linted: true, ok: false, names: [], diagnostics };
  const listed = await run(['-N', '-K', '-q'], text);
  const names = listed.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  return { linted: true, ok: true, names, diagnostics: '' };
}
