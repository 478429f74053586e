import { describe, expect, it } from '@jest/globals';
import { runCt } from '../support/cli.js';

describe('ct with a command it does not have', () => {
  it.each([['nosuch', '--help'], ['nosuch'], ['verfy', 'x.ctp']])('ct %s … fails with UNKNOWN_COMMAND (exit 1), naming it and the real commands', async (...args) => {
    const r = await runCt(args);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`error[UNKNOWN_COMMAND]: unknown command "${args[0]}"`);
    expect(r.stderr).toContain('verify-bundle');
  });

  it('a near name is suggested', async () => {
    expect((await runCt(['verfy', 'x.ctp'])).stderr).toContain('unknown command "verfy". Did you mean verify? ct has:');
    expect((await runCt(['zzzzzz'])).stderr).not.toContain('Did you mean');
  });

  it('parser errors (a missing required option, an unknown flag) are USAGE errors of one line, then where the options are', async () => {
    const missing = await runCt(['pack']);
    expect(missing).toMatchObject({ code: 1, stdout: '', stderr: "error[USAGE]: required option '-o, --out <file>' not specified\n(add --help to see the options)\n" });
    const unknown = await runCt(['verify', 'x.ctp', '--no-such-flag']);
    expect(unknown).toMatchObject({ code: 1, stderr: "error[USAGE]: unknown option '--no-such-flag'\n(add --help to see the options)\n" });
    // What the parser quotes back is shown, not acted on by the terminal.
    expect((await runCt(['verify', 'x.ctp', '--x\u001b]0;pwned\u0007'])).stderr).toBe("error[USAGE]: unknown option '--x\\u001b]0;pwned\\u0007'\n(add --help to see the options)\n");
  });

  it('known commands and the root help still work', async () => {
    const help = await runCt(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('verify-bundle');
    const sub = await runCt(['verify', '--help']);
    expect(sub.code).toBe(0);
    expect(sub.stdout).toContain('Usage: ct verify');
  });

  it('--version prints the version (no command module loaded), and nothing else', async () => {
    const v = await runCt(['--version']);
    expect(v).toMatchObject({ code: 0, stdout: '0.1.0\n' });
  });
});
