/**
 * SELinux container policies (issue 11, deliverable 6): udica-style CIL generated from the
 * manifest, compiled with Debian's secilc against a stand-in of the host's reference policy; bundle
 * text checked; carried in security/selinux/policy.cil and covered like every security/ file;
 * labels in the OCI config where the kernel enforces SELinux; refused with HOST_SELINUX_UNAVAILABLE
 * where a policy requires it and the host has none (this kernel).
 */
import { describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTAINER_TEMPLATE_CIL, checkBundleSelinux, generateSelinuxPolicy } from '../../src/profiles/selinux/index.js';
import { packCtp } from '../../src/bundle/pack/pack.js';
import { openCtp } from '../../src/bundle/read.js';
import { bundleFactsFromArchive } from '../../src/policy/bundle-facts.js';
import { checkRuntime } from '../../src/policy/runtime-rules.js';
import { buildRuntimePlan } from '../../host/enforce/index.js';
import { collectFacts, selinuxFacts } from '../../host/facts.js';
import { codeOf, codeOfAsync } from '../support/error-code.js';
import { repoRoot } from '../support/cli.js';
import { DIGEST, makeRootfs } from '../host/support.js';

const BASE = readFileSync(join(repoRoot, 'test', 'profiles', 'selinux-base.cil'), 'utf8');

/** secilc on base + template + policy: the compiler the issue names, not a look-alike. */
function secilc(policy: string): { ok: boolean; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ct-cil-'));
  try {
    for (const [n, t] of [['base.cil', BASE], ['template.cil', CONTAINER_TEMPLATE_CIL], ['app.cil', policy]]) writeFileSync(join(dir, n), t);
    const r = spawnSync('secilc', ['-o', join(dir, 'policy.bin'), '-f', '/dev/null', join(dir, 'base.cil'), join(dir, 'template.cil'), join(dir, 'app.cil')], { encoding: 'utf8' });
    if (r.error) throw new Error(`secilc is not installed (apt secilc): ${r.error.message}`);
    return { ok: r.status === 0, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('SELinux policy generation', () => {
  it('generates a udica-style block from the manifest that secilc compiles', () => {
    const web = generateSelinuxPolicy('hello-http', { network: 'bridge', ports: ['8080/tcp', '53/udp'], capabilities: ['CAP_NET_BIND_SERVICE'], read_only_rootfs: true });
    expect(web.block).toBe('ct_hello_http');
    expect(web.text).toContain('(blockinherit ct_container)');
    expect(web.text).toContain('(blockinherit ct_container_net)');
    expect(web.text).toContain('(allow process unreserved_port_t (tcp_socket (name_bind)))');
    expect(web.text).toContain('(allow process reserved_port_t (udp_socket (name_bind)))');
    expect(web.text).toContain('(allow process process (capability (net_bind_service)))');
    expect(web.text).not.toContain('(file (write))');
    expect(secilc(web.text)).toEqual({ ok: true, stderr: '' });

    const quiet = generateSelinuxPolicy('batch', { network: 'none', ports: ['8080/tcp'], read_only_rootfs: false });
    expect(quiet.text).not.toContain('ct_container_net');
    expect(quiet.text).not.toContain('name_bind');
    expect(quiet.text).not.toContain('capability');
    expect(quiet.text).toContain('(allow process container_file_t (file (write)))');
    expect(secilc(quiet.text).ok).toBe(true);
  });

  it('secilc rejects what the reference policy does not define (the compile step is real)', () => {
    const bad = generateSelinuxPolicy('web', { network: 'bridge' }).text.replace('(blockinherit ct_container)', '(blockinherit ct_container)\n    (allow process no_such_t (tcp_socket (name_bind)))');
    const r = secilc(bad);
    expect(r.ok).toBe(false);
    expect(r.stderr).toMatch(/Failed to resolve allow statement at \S*app\.cil/);
  });

  it('checks bundle text: one block named for the app, inheriting the template, no escape hatches', () => {
    const good = generateSelinuxPolicy('web', { network: 'bridge' }).text;
    expect(checkBundleSelinux(good, 'web').block).toBe('ct_web');
    const cases: [string, string][] = [
      ['wrong block', good.replace('ct_web', 'ct_other')],
      ['permissive', good.replace(')\n', ')\n(typepermissive ct_web.process)\n')],
      ['unconfined', good.replace('(blockinherit ct_container)', '(blockinherit ct_container)\n    (allow process unconfined_t (process (transition)))')],
      ['attribute', good.replace('(blockinherit ct_container)', '(blockinherit ct_container)\n    (typeattributeset domain (process))')],
      ['no template', good.replace('(blockinherit ct_container)', '')],
      ['unbalanced', `${good})`],
      ['two blocks', `${good}(block ct_web (blockinherit ct_container))\n`],
      ['too large', `${good};${'x'.repeat(70_000)}\n`],
    ];
    for (const [what, text] of cases) expect([what, codeOf(() => checkBundleSelinux(text, 'web'))]).toEqual([what, 'PROFILE_INVALID']);
  });
});

describe('bundle SELinux text: only its own domain', () => {
  const good = generateSelinuxPolicy('web', { network: 'bridge' }).text;
  const inBlock = (rule: string) => good.replace('(blockinherit ct_container)', `(blockinherit ct_container)\n    ${rule}`);
  // Each changes what other domains of the host may do (or lets the container become one of
  // them), and each secilc compiles against the reference stand-in (where the stand-in has the
  // class: it has no dyntransition): a bundle's policy is loaded into the host's kernel policy
  // with semodule, so it may only speak of its own process type.
  it.each([
    ['a global allow after the block (every domain of the host)', `${good}(allow domain container_file_t (file (write)))\n`],
    ['a global allow before the block (the runtime)', `(allow container_runtime_t container_file_t (file (write)))\n${good}`],
    ['a global type', `${good}(type ct_extra_t)\n`],
    ['an allow for a global attribute inside the block (names resolve outward)', inBlock('(allow domain container_file_t (file (write)))')],
    ['an allow for the runtime inside the block', inBlock('(allow container_runtime_t container_file_t (file (write)))')],
    ['a dyntransition into the runtime domain', inBlock('(allow process container_runtime_t (process (dyntransition)))')],
    ['a transition into the runtime domain', inBlock('(allow process container_runtime_t (process (transition)))')],
    // CIL reads `all` in a permission list as every permission of the class, transition included.
    ['all process permissions toward the runtime (transition among them)', inBlock('(allow process container_runtime_t (process (all)))')],
    // Powers over the host whatever the target: the policy itself, relabeling, SELinux's capability.
    ['setenforce (class security)', inBlock('(allow process kernel_t (security (setenforce)))')],
    ['load_policy (class security)', inBlock('(allow process process (security (load_policy)))')],
    ['relabeling a host type', inBlock('(allow process container_file_t (file (relabelto relabelfrom)))')],
    ['mac_admin', inBlock('(allow process process (capability2 (mac_admin)))')],
    ['mac_override', inBlock('(allow process self (capability2 (mac_override)))')],
    ['ptrace of the runtime', inBlock('(allow process container_runtime_t (process (ptrace)))')],
    ['setcurrent', inBlock('(allow process process (process (setcurrent)))')],
    ['inheriting a block other than the template', inBlock('(blockinherit ct_other)'), false],
  ])('refuses %s with PROFILE_INVALID', (_what, text, compiles = true) => {
    if (compiles) expect(secilc(text)).toMatchObject({ ok: true });
    expect(codeOf(() => checkBundleSelinux(text, 'web'))).toBe('PROFILE_INVALID');
  });

  it('refuses nesting deeper than a policy needs, without a stack overflow', () => {
    expect(codeOf(() => checkBundleSelinux(`${'('.repeat(30_000)}${')'.repeat(30_000)}`, 'web'))).toBe('PROFILE_INVALID');
  });

  it('accepts the generated policies and allow rules of its own process', () => {
    for (const t of [
      good,
      generateSelinuxPolicy('web', { network: 'bridge', ports: ['80/tcp'], capabilities: ['CAP_NET_BIND_SERVICE'], read_only_rootfs: false }).text,
      inBlock('(dontaudit process container_file_t (dir (write)))'),
      inBlock('(allow process self (process (ptrace signal)))'),
    ]) expect(checkBundleSelinux(t, 'web').block).toBe('ct_web');
  });
});

describe('SELinux on the host', () => {
  it('a policy that requires SELinux is refused on this kernel (HOST_SELINUX_UNAVAILABLE), by the engine and by the host', async () => {
    const facts = await collectFacts();
    if (facts.selinux?.enforcing) {
      console.log('skipping: this kernel enforces SELinux; the refusal is for hosts without it');
      return;
    }
    expect(await selinuxFacts()).toMatchObject({ enforcing: false });
    const rule = { allowPrivileged: false, selinux: { at: { file: 'p.yaml', line: 1, column: 1 } }, at: { file: 'p.yaml', line: 1, column: 1 } };
    const found = checkRuntime(rule, { runtime: {}, security: {} }, { environment: 'production', selinux: { present: false, enforcing: false } }).map((v) => v.code);
    expect(found.sort()).toEqual(['HOST_SELINUX_UNAVAILABLE', 'SELINUX_REQUIRED']);
    const { base, rootfs } = await makeRootfs();
    try {
      const input = { id: 'se', rootfs, app: { name: 'web', imageDigest: DIGEST }, runtime: { command: ['/bin/true'] }, grants: { seccomp: 'required' as const, selinux: 'required' as const } };
      expect(await codeOfAsync(buildRuntimePlan(input, facts))).toBe('HOST_SELINUX_UNAVAILABLE');
      // Not required: the plan carries the policy but sets no label on a host without SELinux.
      const plan = await buildRuntimePlan({ ...input, grants: { seccomp: 'required' } }, facts);
      expect(plan.selinux).toMatchObject({ applied: false, block: 'ct_web' });
      expect(plan.config.process.selinuxLabel).toBeUndefined();
      // Where the kernel enforces: selinuxLabel and mountLabel in the OCI config.
      const enforcing = await buildRuntimePlan({ ...input, grants: { seccomp: 'required', selinux: 'required' } }, { ...facts, selinux: { present: true, enforcing: true } });
      expect(enforcing.config.process.selinuxLabel).toBe('system_u:system_r:ct_web.process:s0');
      expect(enforcing.config.linux.mountLabel).toBe('system_u:object_r:container_file_t:s0');
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it('ct pack carries security/selinux/policy.cil; the engine reads it from the bundle bytes', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ct-se-pack-'));
    try {
      mkdirSync(join(dir, 'app/bin'), { recursive: true });
      writeFileSync(join(dir, 'app/bin/x'), 'x');
      writeFileSync(join(dir, 'app/ct.toml'), 'name = "web"\nversion = "1.0.0"\n[runtime]\nnetwork = "bridge"\nports = [{container = 8080, protocol = "tcp"}]\n');
      mkdirSync(join(dir, 'security/selinux'), { recursive: true });
      const text = generateSelinuxPolicy('web', { network: 'bridge', ports: ['8080/tcp'] }).text;
      writeFileSync(join(dir, 'security/selinux/policy.cil'), text);
      await packCtp({ from: { dir: join(dir, 'app') }, out: join(dir, 'web.ctp'), mtime: 0, securityDir: join(dir, 'security') });
      const archive = await openCtp(join(dir, 'web.ctp'));
      expect(archive.file('security/selinux/policy.cil').toString('utf8')).toBe(text);
      expect(archive.manifest.runtime?.ports).toEqual(['8080/tcp']);
      expect(bundleFactsFromArchive(archive).security?.selinux).toBe(text);
      // Anything else in security/selinux/ is refused at pack time.
      writeFileSync(join(dir, 'security/selinux/extra.cil'), text);
      expect(await codeOfAsync(packCtp({ from: { dir: join(dir, 'app') }, out: join(dir, 'x.ctp'), mtime: 0, securityDir: join(dir, 'security') }))).toBe('USAGE');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
