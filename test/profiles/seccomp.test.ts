import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CtError } from '../../src/core/errors.js';
import { MOBY_DEFAULT } from '../../src/profiles/seccomp/moby-default.js';
import { OCI_SCHEMAS } from '../../src/profiles/seccomp/oci-schema.js';
import {
  allowListProfile,
  assertSeccompProfile,
  checkBundleSeccomp,
  confines,
  runtimeDefault,
  STARTUP_SYSCALLS_NNP,
  type OciSeccomp,
} from '../../src/profiles/seccomp/index.js';
import { repoRoot, runCt } from '../support/cli.js';
import { codeOf } from '../support/error-code.js';

const REF = join(repoRoot, '..', 'shared', 'reference');

function names(p: OciSeccomp, unconditionalOnly = false): Set<string> {
  const out = new Set<string>();
  for (const r of p.syscalls ?? []) {
    if (r.action !== 'SCMP_ACT_ALLOW') continue;
    if (unconditionalOnly && r.args && r.args.length > 0) continue;
    r.names.forEach((n) => out.add(n));
  }
  return out;
}


describe('vendored reference data', () => {
  it("equals Docker's default profile in the reference copy", () => {
    const ref = JSON.parse(readFileSync(join(REF, 'moby-profiles', 'seccomp-default.json'), 'utf8'));
    expect(MOBY_DEFAULT).toEqual(ref);
  });
  it('equals the OCI runtime-spec schemas in the reference copy', () => {
    for (const f of Object.keys(OCI_SCHEMAS)) {
      expect(OCI_SCHEMAS[f]).toEqual(JSON.parse(readFileSync(join(REF, 'oci-runtime-spec', 'schema', f), 'utf8')));
    }
  });
});

describe('RuntimeDefault in OCI form', () => {
  const amd64 = runtimeDefault({ arch: 'amd64', kernel: '6.1.0' });

  it('has no Docker-only keys and passes the OCI schema', () => {
    expect(Object.keys(amd64).sort()).toEqual(['architectures', 'defaultAction', 'defaultErrnoRet', 'syscalls']);
    for (const r of amd64.syscalls!) expect(Object.keys(r).every((k) => ['names', 'action', 'errnoRet', 'args'].includes(k))).toBe(true);
    expect(() => assertSeccompProfile(amd64)).not.toThrow();
  });

  it('resolves archMap and arch includes for amd64 and arm64', () => {
    expect(amd64.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    expect(names(amd64).has('arch_prctl')).toBe(true);
    expect(names(amd64).has('arm_fadvise64_64')).toBe(false);
    const arm64 = runtimeDefault({ arch: 'arm64', kernel: '6.1.0' });
    expect(arm64.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    expect(names(arm64).has('arch_prctl')).toBe(false);
    expect(names(arm64).has('arm_fadvise64_64')).toBe(true);
  });

  it('resolves capability includes/excludes like Docker', () => {
    // Docker default caps: no CAP_SYS_ADMIN → clone only with the namespace-flag mask, no mount.
    expect(names(amd64, true).has('clone')).toBe(false);
    expect(names(amd64).has('clone')).toBe(true);
    expect(names(amd64).has('mount')).toBe(false);
    expect(names(amd64).has('chroot')).toBe(true); // CAP_SYS_CHROOT is a Docker default
    const admin = runtimeDefault({ arch: 'amd64', kernel: '6.1.0', capabilities: ['CAP_SYS_ADMIN'] });
    expect(names(admin, true).has('clone')).toBe(true);
    expect(names(admin).has('mount')).toBe(true);
    expect(names(admin).has('chroot')).toBe(false);
    // clone3 is ENOSYS (not EPERM) without CAP_SYS_ADMIN, so glibc falls back to clone.
    expect(amd64.syscalls!.find((r) => r.names.includes('clone3'))).toMatchObject({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });

  it('checks minKernel against the kernel', () => {
    expect(names(amd64).has('ptrace')).toBe(true);
    expect(names(runtimeDefault({ arch: 'amd64', kernel: '4.4.0' })).has('ptrace')).toBe(false);
  });

  it('allows about 360 syscalls, all unknown ones ERRNO(EPERM)', () => {
    expect(amd64.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(amd64.defaultErrnoRet).toBe(1);
    expect(names(amd64).size).toBeGreaterThan(340);
    expect(names(amd64).has('kexec_load')).toBe(false);
  });

  it('`ct profile seccomp runtime-default` prints it as JSON', async () => {
    const r = await runCt(['profile', 'seccomp', 'runtime-default']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual(runtimeDefault());
  });
});

describe('bundle-supplied profiles', () => {
  const good = allowListProfile(['read', 'exit_group']);

  it('accepts a valid profile that lets runc start', () => {
    expect(checkBundleSeccomp(good)).toBe(good);
  });

  it.each([
    ['a bad default action', { ...good, defaultAction: 'SCMP_ACT_MAYBE' }],
    ['no default action', { syscalls: good.syscalls }],
    ['names not a list', { ...good, syscalls: [{ names: 'read', action: 'SCMP_ACT_ALLOW' }] }],
    ['Docker-only includes', { ...good, syscalls: [{ ...good.syscalls![0], includes: { caps: ['CAP_SYS_ADMIN'] } }] }],
    ['Docker-only archMap', { ...good, archMap: [] }],
    ['a syscall name that is not an identifier', { ...good, syscalls: [{ names: ['read"); system("x'], action: 'SCMP_ACT_ALLOW' }] }],
    ['a negative errnoRet', { ...good, defaultErrnoRet: -1 }],
    ['an unknown architecture', { ...good, architectures: ['SCMP_ARCH_Z80'] }],
    ['not an object', ['SCMP_ACT_ALLOW']],
  ])('rejects %s with PROFILE_INVALID', (_what, bad) => {
    expect(codeOf(() => checkBundleSeccomp(bad))).toBe('PROFILE_INVALID');
  });

  it('reports every problem at once', () => {
    try {
      assertSeccompProfile({ defaultAction: 'NOPE', archMap: [], syscalls: [{ names: ['a b'], action: 'SCMP_ACT_ALLOW' }] });
      throw new Error('accepted');
    } catch (e) {
      expect((e as CtError).code).toBe('PROFILE_INVALID');
      expect(((e as CtError).details.problems as string[]).length).toBeGreaterThanOrEqual(3);
    }
  });

  it('rejects a profile that denies a start-up syscall, naming it', () => {
    const noExecve: OciSeccomp = { ...good, syscalls: [{ names: good.syscalls![0].names.filter((n) => n !== 'execve'), action: 'SCMP_ACT_ALLOW' }] };
    try {
      checkBundleSeccomp(noExecve);
      throw new Error('accepted');
    } catch (e) {
      expect((e as CtError).code).toBe('PROFILE_MISSING_STARTUP_SYSCALLS');
      expect((e as CtError).details.missing).toEqual(['execve']);
    }
    // allowed only for some argument values is not enough for runc
    const conditional: OciSeccomp = {
      ...noExecve,
      syscalls: [...noExecve.syscalls!, { names: ['execve'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'SCMP_CMP_EQ' }] }],
    };
    expect(codeOf(() => checkBundleSeccomp(conditional))).toBe('PROFILE_MISSING_STARTUP_SYSCALLS');
  });

  it('`ct profile seccomp check` exits 10 for an invalid profile, 4 for one that does not confine', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ct-seccomp-'));
    try {
      await writeFile(join(dir, 'bad.json'), '{"defaultAction":"SCMP_ACT_NOPE"}');
      const r = await runCt(['profile', 'seccomp', 'check', join(dir, 'bad.json')]);
      expect(r.code).toBe(10);
      expect(r.stderr).toContain('PROFILE_INVALID');
      await writeFile(join(dir, 'open.json'), JSON.stringify({ ...good, defaultAction: 'SCMP_ACT_ALLOW' }));
      const open = await runCt(['profile', 'seccomp', 'check', join(dir, 'open.json')]);
      expect(open.code).toBe(4);
      expect(JSON.parse(open.stdout).problems).toEqual(['DEFAULT_ACTION_ALLOWS']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('confines (SPEC §7 "seccomp required")', () => {
  const rd = runtimeDefault({ arch: 'amd64', kernel: '6.1.0' });

  it('RuntimeDefault and a recorded allow-list confine', () => {
    expect(confines(rd, { arch: 'amd64', kernel: '6.1.0' })).toEqual({ confines: true, problems: [], outside: [] });
    expect(confines(allowListProfile(['read', 'write']), { arch: 'amd64', kernel: '6.1.0' }).confines).toBe(true);
  });

  it('a default action that allows does not confine', () => {
    expect(confines({ ...rd, defaultAction: 'SCMP_ACT_ALLOW' }).problems).toContain('DEFAULT_ACTION_ALLOWS');
    expect(confines({ ...rd, defaultAction: 'SCMP_ACT_LOG' }).problems).toContain('DEFAULT_ACTION_ALLOWS');
    expect(confines({ ...rd, defaultAction: 'SCMP_ACT_KILL_PROCESS' }).confines).toBe(true);
  });

  it('a notify listener or SPEC_ALLOW needs the policy to allow it', () => {
    const notify: OciSeccomp = { ...rd, syscalls: [...rd.syscalls!, { names: ['read'], action: 'SCMP_ACT_NOTIFY' }] };
    expect(confines(notify).problems).toEqual(['NOTIFY_LISTENER']);
    expect(confines(notify, { allowNotify: true }).confines).toBe(true);
    expect(confines({ ...rd, listenerPath: '/run/agent.sock' }).problems).toEqual(['NOTIFY_LISTENER']);
    const spec: OciSeccomp = { ...rd, flags: ['SECCOMP_FILTER_FLAG_SPEC_ALLOW'] };
    expect(confines(spec).problems).toEqual(['SPEC_ALLOW']);
    expect(confines(spec, { allowSpecAllow: true }).confines).toBe(true);
  });

  it('syscalls outside RuntimeDefault need to be listed as extras', () => {
    const extra = allowListProfile(['read', 'kexec_load']);
    expect(confines(extra)).toMatchObject({ confines: false, problems: ['OUTSIDE_RUNTIME_DEFAULT'], outside: ['kexec_load'] });
    expect(confines(extra, { extras: ['kexec_load'] }).confines).toBe(true);
  });

  it('a conditional RuntimeDefault rule covers only the same conditions', () => {
    const cloneRule = rd.syscalls!.find((r) => r.names.includes('clone') && r.args)!;
    const bare = allowListProfile([]);
    const unconditional: OciSeccomp = { ...bare, syscalls: [...bare.syscalls!, { names: ['clone'], action: 'SCMP_ACT_ALLOW' }] };
    expect(confines(unconditional).outside).toEqual(['clone']);
    // allowListProfile keeps RuntimeDefault's conditions for such syscalls
    const listed = allowListProfile(['clone']);
    expect(listed.syscalls![0].names).not.toContain('clone');
    expect(listed.syscalls!.find((r) => r.names[0] === 'clone')?.args).toEqual(cloneRule.args);
    expect(confines(listed).confines).toBe(true);
    const same: OciSeccomp = { ...allowListProfile([]), syscalls: [...allowListProfile([]).syscalls!, { names: ['clone'], action: 'SCMP_ACT_ALLOW', args: cloneRule.args }] };
    expect(confines(same).confines).toBe(true);
  });

  it('the start-up set is within RuntimeDefault', () => {
    const all = names(rd, true);
    expect(STARTUP_SYSCALLS_NNP.filter((n) => !all.has(n))).toEqual([]);
  });
});
