import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { action, processIo } from '../io.js';
import { timeoutOption } from '../../core/timeout-option.js';
import { readJsonFile } from '../../core/json.js';
import { CtError, asIoError } from '../../core/errors.js';
import { writeFileAtomic } from '../../core/fs.js';
import { runtimeDefault, checkBundleSeccomp, confines } from '../../profiles/seccomp/index.js';
import { checkBundleAppArmor, generateAppArmorProfile, lintAppArmor } from '../../profiles/apparmor/index.js';

function list(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter(Boolean)];
}


interface MonitorModule {
  parseRules(text: string, where?: string): unknown;
  toFalcoRules(rules: unknown, opts?: { container?: string }): string;
  toTetragonPolicy(rules: unknown, opts?: { container?: string }): string;
}

interface RecordModule {
  recordProfile(opts: { rootfs: string; args: string[]; timeoutMs?: number }): Promise<{ profile: unknown; exitCode: number | null; syscalls: string[] }>;
}

/**
 * `ct profile …`: seccomp and AppArmor profiles. `record` runs a container, so its code lives in
 * host/ and is loaded by path at run time (the library never imports host/).
 */
export function register(program: Command): void {
  const profile = program.command('profile').description('seccomp and AppArmor profiles');
  const seccomp = profile.command('seccomp').description('seccomp profiles (OCI linux.seccomp)');

  seccomp
    .command('runtime-default')
    .description("print RuntimeDefault (Docker's default profile) as OCI linux.seccomp JSON for this host")
    .option('--arch <goarch>', 'architecture (Go name: amd64, arm64, …); default: this host')
    .option('--cap <caps>', 'capabilities granted (comma-separated, CAP_*); default: Docker defaults', list)
    .action(
      action(async (opts: { arch?: string; cap?: string[] }) => {
        processIo.out(JSON.stringify(runtimeDefault({ arch: opts.arch, capabilities: opts.cap }), null, 2));
      }),
    );

  seccomp
    .command('check')
    .description('validate a bundle-supplied profile (OCI schema, runc start-up syscalls) and report whether it confines')
    .argument('<file>', 'seccomp profile, JSON (a bundle\'s security/seccomp.json)')
    .option('--extras <syscalls>', 'syscalls the policy allows beyond RuntimeDefault', list)
    .action(
      action(async (file: string, opts: { extras?: string[] }) => {
        const p = checkBundleSeccomp(await readJsonFile(file, 'PROFILE_INVALID'), file);
        const report = confines(p, { extras: opts.extras });
        processIo.out(JSON.stringify(report, null, 2));
        return report.confines ? 0 : 4;
      }),
    );

  profile
    .command('apparmor-check')
    .description('check bundle-supplied AppArmor text (no system names, no unconfined exec) and lint it with apparmor_parser')
    .argument('<file>', 'AppArmor profile text (a bundle\'s security/apparmor)')
    .action(
      action(async (file: string) => {
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (e) {
          throw asIoError(e, file);
        }
        checkBundleAppArmor(text, file);
        const lint = await lintAppArmor(text);
        processIo.out(JSON.stringify(lint, null, 2));
      }),
    );

  profile
    .command('apparmor-generate')
    .description('print the AppArmor profile the host generates for an app (docker-default baseline, host-chosen name)')
    .requiredOption('--name <app>', 'bundle name')
    .requiredOption('--digest <sha256>', 'image digest (sha256:<64 hex>)')
    .option('--cap <caps>', 'capabilities granted (comma-separated, CAP_*)', list)
    .option('--network <mode>', 'network mode asked for (none, bridge, host)')
    .action(
      action(async (opts: { name: string; digest: string; cap?: string[]; network?: string }) => {
        const p = generateAppArmorProfile({ name: opts.name, imageDigest: opts.digest }, { capabilities: opts.cap, network: opts.network });
        processIo.out(p.text);
      }),
    );

  profile
    .command('monitor-export')
    .description('check monitoring rules (security/monitor.yaml) and export them as Falco rules or a Tetragon TracingPolicy')
    .argument('<file>', 'monitoring rules, YAML (a bundle\'s security/monitor.yaml)')
    .requiredOption('--format <format>', 'falco | tetragon')
    .option('--container <name>', 'scope the output to this container')
    .action(
      action(async (file: string, opts: { format: string; container?: string }) => {
        if (opts.format !== 'falco' && opts.format !== 'tetragon') throw new CtError('USAGE', `--format must be falco or tetragon, not ${opts.format}`, {});
        let text: string;
        try {
          text = await readFile(file, 'utf8');
        } catch (e) {
          throw asIoError(e, file);
        }
        // The rule language lives with the monitor in host/; loaded by path (the library never imports host/).
        const url = new URL('../../../host/monitor/index.js', import.meta.url).href;
        const m = (await import(url)) as MonitorModule;
        const rules = m.parseRules(text, file);
        processIo.out(opts.format === 'falco' ? m.toFalcoRules(rules, { container: opts.container }) : m.toTetragonPolicy(rules, { container: opts.container }));
      }),
    );

  profile
    .command('record')
    .description('run CMD under runc in ROOTFS, trace its syscalls with bpftrace, print a minimal allow-list profile')
    .requiredOption('--rootfs <dir>', 'root filesystem to run the command in')
    .option('--out <file>', 'write the profile here instead of stdout')
    .option('--timeout <seconds>', 'stop the command after this long', '60')
    .argument('<cmd...>', 'command and arguments (after --)')
    .action(
      action(async (cmd: string[], opts: { rootfs: string; out?: string; timeout: string }) => {
        const url = new URL('../../../host/monitor/record.js', import.meta.url).href;
        const { recordProfile } = (await import(url)) as RecordModule;
        const timeoutMs = timeoutOption(opts.timeout, '--timeout', 's');
        const result = await recordProfile({ rootfs: opts.rootfs, args: cmd, timeoutMs });
        const json = `${JSON.stringify(result.profile, null, 2)}\n`;
        if (opts.out) {
          await writeFileAtomic(opts.out, json);
          processIo.err(`recorded ${result.syscalls.length} syscalls; app exit code ${result.exitCode}; profile written to ${opts.out}`);
        } else {
          processIo.out(json);
        }
      }),
    );
}
