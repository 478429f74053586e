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

/** What is kept of each stream of the parser: its diagnostics and the names are short. */
const MAX_OUTPUT = 64 * 1024;
/** The parser compiles docker-default in well under a second; one that reads a FIFO never ends. */
export const LINT_TIMEOUT_MS = 30_000;

function run(args: string[], input: string, timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; missing: boolean; timedOut: boolean }> {
  return new Promise((resolve) => {
    // A process group of its own: the parser forks, and a fork blocked in an include would keep
    // running (and keep the pipes open) after its parent was killed.
    const child = spawn('apparmor_parser', args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const keep = (s: string, d: Buffer) => (s.length < MAX_OUTPUT ? s + d.toString().slice(0, MAX_OUTPUT - s.length) : s);
    child.stdout.on('data', (d: Buffer) => (stdout = keep(stdout, d)));
    child.stderr.on('data', (d: Buffer) => (stderr = keep(stderr, d)));
    // Bundle text decides what the parser reads (an include the checker missed, a huge profile):
    // the deploy waiting on it must end all the same.
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      // Not waiting for 'close': a descendant that escaped the group would hold the pipes.
      resolve({ code: null, stdout, stderr, missing: false, timedOut });
    }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: e.message, missing: e.code === 'ENOENT', timedOut });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, missing: false, timedOut });
    });
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
export async function lintAppArmor(text: string, o: { timeoutMs?: number } = {}): Promise<AppArmorLint> {
  const timeoutMs = o.timeoutMs ?? LINT_TIMEOUT_MS;
  const compiled = await run(['-Q', '-K', '-q'], text, timeoutMs);
  if (compiled.missing) return { linted: false, ok: false, names: [], diagnostics: 'apparmor_parser is not installed' };
  if (compiled.timedOut) return { linted: true, ok: false, names: [], diagnostics: `apparmor_parser did not finish within ${timeoutMs} ms` };
  const diagnostics = compiled.stderr.replace(NOISE, '').trim().split('\n').slice(0, 10).join('\n');
  if (compiled.code !== 0) return { linted: true, ok: false, names: [], diagnostics };
  const listed = await run(['-N', '-K', '-q'], text, timeoutMs);
  if (listed.timedOut || listed.code !== 0) return { linted: true, ok: false, names: [], diagnostics: listed.timedOut ? `apparmor_parser -N did not finish within ${timeoutMs} ms` : listed.stderr.replace(NOISE, '').trim().slice(0, 1000) };
  const names = listed.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  return { linted: true, ok: true, names, diagnostics: '' };
}
