import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import {
  checkBundleAppArmor,
  DOCKER_CAPABILITY_RULES,
  DOCKER_NETWORK_RULES,
  generateAppArmorProfile,
  isHostProfileName,
  lintAppArmor,
  profileNameFor,
  renderBaseline,
} from '../../src/profiles/apparmor/index.js';
import { repoRoot, runCt } from '../support/cli.js';

const GOLDEN = readFileSync(join(repoRoot, '..', 'shared', 'reference', 'moby-profiles', 'apparmor-docker-default.golden'), 'utf8');
const DIGEST = `sha256:${'0123456789abcdef'.repeat(4)}`;
/** docker-default under a neutral name: the valid fixture each negative case changes once. */
const VALID = GOLDEN.replace(/"default"/g, '"myapp"');

function refusal(text: string): string[] | undefined {
  try {
    checkBundleAppArmor(text);
  } catch (e) {
    if (e instanceof CtError && e.code === 'PROFILE_INVALID') return e.details.problems as string[];
    throw e;
  }
  return undefined;
}

describe('AppArmor baseline and generation', () => {
  it("renders docker-default byte for byte with Docker's values", () => {
    expect(renderBaseline({ name: 'default', capabilityRules: DOCKER_CAPABILITY_RULES, networkRules: DOCKER_NETWORK_RULES })).toBe(GOLDEN);
  });

  it('names the profile from the app and image digest, never from the bundle', () => {
    expect(profileNameFor('Hello World', DIGEST)).toBe('cerro-torre-hello-world-0123456789ab');
    const hostile = profileNameFor('../../etc/apparmor.d/unconfined; rm -rf /', DIGEST);
    expect(hostile).toMatch(/^cerro-torre-[a-z0-9-]+-0123456789ab$/);
    expect(isHostProfileName(hostile)).toBe(true);
    expect(isHostProfileName('unconfined')).toBe(false);
    expect(() => profileNameFor('x', 'sha256:nothex')).toThrow(CtError);
  });

  it('generates a profile with only the granted capabilities, which apparmor_parser compiles', async () => {
    const { name, text } = generateAppArmorProfile({ name: 'web', imageDigest: DIGEST }, { capabilities: ['CAP_NET_BIND_SERVICE', 'CAP_CHOWN'] });
    expect(text).toContain('  capability chown,\n  capability net_bind_service,\n');
    expect(text).not.toContain('  capability,\n');
    const lint = await lintAppArmor(text);
    // apparmor_parser is installed in CI (apt apparmor): a missing parser fails here, not skips.
    expect(lint).toEqual({ linted: true, ok: true, names: [name], diagnostics: '' });
  });

  it('denies inet sockets when the app asked for no network', async () => {
    const { text } = generateAppArmorProfile({ name: 'batch', imageDigest: DIGEST }, { network: 'none' });
    expect(text).toContain('deny network inet,');
    expect(text).not.toMatch(/^ {2}network,$/m);
    expect((await lintAppArmor(text)).ok).toBe(true);
  });

  it('`ct profile apparmor-generate` prints the generated profile', async () => {
    const r = await runCt(['profile', 'apparmor-generate', '--name', 'web', '--digest', DIGEST, '--cap', 'CAP_CHOWN']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(generateAppArmorProfile({ name: 'web', imageDigest: DIGEST }, { capabilities: ['CAP_CHOWN'] }).text);
  });

  it('lint reports a profile the parser rejects', async () => {
    const lint = await lintAppArmor('profile "x" {\n  bogus rule here\n}\n');
    expect(lint.linted).toBe(true);
    expect(lint.ok).toBe(false);
    expect(lint.diagnostics).toMatch(/line 2/);
  });
});

describe('bundle-supplied AppArmor text', () => {
  it('accepts docker-default under its own name and renames it to the host name', async () => {
    const hostName = profileNameFor('myapp', DIGEST);
    const out = checkBundleAppArmor(VALID, 'security/apparmor', hostName);
    expect(out.declaredName).toBe('myapp');
    const lint = await lintAppArmor(out.text);
    expect(lint.ok).toBe(true);
    expect(lint.names).toEqual([hostName]);
  });

  it.each([
    ['a system profile name', VALID.replace('profile "myapp"', 'profile "unconfined"')],
    ['the docker-default name', VALID.replace('profile "myapp"', 'profile docker-default')],
    ['an attachment path as name', VALID.replace('profile "myapp"', 'profile /usr/bin/runc')],
    ['an attachment after the name', VALID.replace('profile "myapp"', 'profile "myapp" /usr/bin/**')],
    ['unconfined exec (ux)', VALID.replace('  file,', '  file,\n  /bin/sh ux,')],
    ['unconfined exec (Ux)', VALID.replace('  file,', '  file,\n  /bin/** Ux,')],
    ['fallback to unconfined (pux)', VALID.replace('  file,', '  file,\n  /bin/sh pux,')],
    ['fallback to unconfined (PUx)', VALID.replace('  file,', '  file,\n  /bin/sh PUx,')],
    ['unconfined exec combined with read (rux)', VALID.replace('  file,', '  file,\n  /bin/sh rux,')],
    ['change_profile to unconfined', VALID.replace('  file,', '  file,\n  change_profile -> unconfined,')],
    ['change_profile to anything', VALID.replace('  file,', '  file,\n  change_profile,')],
    ['complain mode', VALID.replace('flags=(attach_disconnected,mediate_deleted)', 'flags=(complain)')],
    ['unconfined mode', VALID.replace('flags=(attach_disconnected,mediate_deleted)', 'flags=(unconfined)')],
    ['a second profile', `${VALID}\nprofile "other" {\n  file,\n}\n`],
    ['a hat', VALID.replace('  file,', '  file,\n  ^hat {\n    file,\n  }')],
    ['an include of a host file', `#include "/etc/apparmor.d/usr.sbin.sshd"\n${VALID}`],
    ['ptrace of unconfined processes', VALID.replace('  file,', '  file,\n  ptrace (trace) peer=unconfined,')],
  ])('refuses %s with PROFILE_INVALID', (_what, text) => {
    expect(refusal(text)).toBeDefined();
  });

  // Ubuntu 24.04 ships dozens of profiles in unconfined mode (`runc`, `crun`, browsers...): a
  // transition to any profile the host has loaded, by attachment (px) or by name (->), leaves the
  // bundle's profile as surely as ux does. Each of these compiles with apparmor_parser.
  it.each([
    ['exec into a host profile by attachment (Px)', VALID.replace('  file,', '  file,\n  /usr/sbin/runc Px,')],
    ['exec into a host profile by attachment, mode first (px)', VALID.replace('  file,', '  file,\n  px /usr/sbin/runc,')],
    ['exec into a named host profile (px ->)', VALID.replace('  file,', '  file,\n  /bin/sh px -> runc,')],
    ['exec into a named host profile, inherit fallback (pix ->)', VALID.replace('  file,', '  file,\n  /bin/sh pix -> crun,')],
    ['exec into a child profile (cx)', VALID.replace('  file,', '  file,\n  /bin/sh cx,')],
    ['change_profile to a named host profile', VALID.replace('  file,', '  file,\n  change_profile -> runc,')],
    ['change_profile to any profile', VALID.replace('  file,', '  file,\n  change_profile -> **,')],
    ['pivot_root into another profile', VALID.replace('  file,', '  file,\n  pivot_root oldroot=/mnt/ /new/ -> runc,')],
  ])('refuses %s with PROFILE_INVALID, though apparmor_parser compiles it', async (_what, text) => {
    const lint = await lintAppArmor(text);
    expect([lint.linted, lint.ok]).toEqual([true, true]);
    expect(refusal(text)).toBeDefined();
  });

  // The parser lowercases mode letters and reads a mode glued to a quoted path; it reads `#` as a
  // comment only after whitespace or `,` (glued to a word it is part of the word), and it honours
  // backslash escapes in and out of quotes. Each of these compiles with the ux/px in force.
  it.each([
    ['unconfined exec in capitals (UX)', VALID.replace('  file,', '  file,\n  /usr/bin/sh UX,')],
    ['exec into a host profile in capitals (PX)', VALID.replace('  file,', '  file,\n  /usr/sbin/runc PX,')],
    ['exec into a child profile in capitals (CX)', VALID.replace('  file,', '  file,\n  /bin/sh CX,')],
    ['exec into a host profile, mixed case (pIx)', VALID.replace('  file,', '  file,\n  /usr/sbin/runc pIx,')],
    ['exec into a host profile, mixed case (RPx)', VALID.replace('  file,', '  file,\n  /usr/sbin/runc RPx,')],
    ['exec into a host profile, capitals first (PX /path)', VALID.replace('  file,', '  file,\n  PX /usr/sbin/runc,')],
    ['a mode glued to a quoted path', VALID.replace('  file,', '  file,\n  "/usr/sbin/runc"Px,')],
    ['ux after a # glued to a path', VALID.replace('  file,', '  file,\n  /tmp/a#b r, /usr/bin/sh ux,')],
    ['px after an escaped quote and a #', VALID.replace('  file,', '  file,\n  "/tmp/a\\"#" r, /bin/sh px -> runc,')],
    ['ux after an escaped space and a #', VALID.replace('  file,', '  file,\n  /tmp/a\\ #b r, /bin/sh ux,')],
  ])('refuses %s with PROFILE_INVALID, though apparmor_parser compiles it', async (_what, text) => {
    const lint = await lintAppArmor(text);
    expect([lint.linted, lint.ok]).toEqual([true, true]);
    expect(refusal(text)).toBeDefined();
  });

  // `->` names a path in link and mount rules: no transition, and a profile with them compiles.
  it('accepts link and mount rules with ->, and comments after whitespace or a comma', async () => {
    const text = VALID.replace('  file,', '  file,\n  link /tmp/a -> /tmp/b,\n  owner link subset /tmp/c -> /tmp/d,\n  mount options=(ro,bind) /srv/ -> /mnt/,\n  /tmp/e r,# ux here is a comment\n  /tmp/f r, #UX too');
    const lint = await lintAppArmor(text);
    expect([lint.linted, lint.ok]).toEqual([true, true]);
    expect(refusal(text)).toBeUndefined();
  });

  // apparmor_parser runs as root on the host: an include names any file it can read, whose first
  // bytes come back in the diagnostics, and one that never ends (a FIFO, trace_pipe) held the deploy.
  it.each([
    ['an include out of the parser directory', `#include <../../sys/kernel/tracing/trace_pipe>\n${VALID}`],
    ['an include out of abstractions', VALID.replace('  file,', '  file,\n  include <abstractions/../../../../etc/shadow>')],
    ['an include if exists out of abstractions', VALID.replace('  file,', '  file,\n  include if exists <../../proc/kmsg>')],
    ['an absolute include after a rule on its line', VALID.replace('  file,', '  file, #include "/etc/shadow"')],
  ])('refuses %s with PROFILE_INVALID', (_what, text) => {
    expect(refusal(text)).toEqual(expect.arrayContaining([expect.stringMatching(/^includes must name an abstraction/)]));
  });

  it('accepts includes of abstractions', () => {
    expect(refusal(`#include <tunables/global>\n${VALID.replace('  file,', '  file,\n  #include <abstractions/base>\n  include if exists <local/myapp>')}`)).toBeUndefined();
  });

  it('lint gives up on a parser that does not finish (an include of a FIFO nobody writes)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ct-aa-fifo-'));
    try {
      execFileSync('mkfifo', [join(dir, 'fifo')]);
      const started = Date.now();
      const lint = await lintAppArmor(`profile "x" {\n  #include "${join(dir, 'fifo')}"\n  file,\n}\n`, { timeoutMs: 1000 });
      expect(lint).toMatchObject({ linted: true, ok: false, names: [] });
      expect(lint.diagnostics).toMatch(/did not finish within 1000 ms/);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 15_000);

  it('still accepts exec that inherits the profile (ix)', () => {
    expect(refusal(VALID.replace('  file,', '  file,\n  /bin/sh ix,\n  /usr/bin/** rix,'))).toBeUndefined();
  });

  it('is not fooled by comments', () => {
    expect(refusal(VALID.replace('  file,', '  file, # ux is fine in a comment, so is unconfined'))).toBeUndefined();
  });

  it('`ct profile apparmor-check` lints accepted text and exits 10 on refused text', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ct-aa-'));
    try {
      await writeFile(join(dir, 'ok'), VALID);
      const ok = await runCt(['profile', 'apparmor-check', join(dir, 'ok')]);
      expect(ok.code).toBe(0);
      expect(JSON.parse(ok.stdout)).toMatchObject({ linted: true, ok: true, names: ['myapp'] });
      await writeFile(join(dir, 'bad'), VALID.replace('  file,', '  file,\n  /bin/sh ux,'));
      const bad = await runCt(['profile', 'apparmor-check', join(dir, 'bad')]);
      expect(bad.code).toBe(10);
      expect(bad.stderr).toContain('PROFILE_INVALID');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
