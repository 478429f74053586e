import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { CtError } from '../../src/core/errors.js';
import { allowListProfile, syscallName, type OciSeccomp } from '../../src/profiles/seccomp/index.js';
import { buildRuntimePlan, type RuntimeAsk, type RuntimeGrants } from '../enforce/index.js';
import { collectFacts } from '../facts.js';
import { RuncRuntime } from '../runtime/runc.js';
import { spawnTool } from '../runtime/tools.js';
import { bpftraceString } from './compile.js';
import { ensureTracingMounts } from './monitor.js';

const ATTACH_TIMEOUT_MS = 30000;

export interface RecordOptions {
  rootfs: string;
  args: string[];
  /** Extra runtime asks (user, env, …) and grants for the recording run. */
  runtime?: Omit<RuntimeAsk, 'command'>;
  grants?: RuntimeGrants;
  timeoutMs?: number;
  /** Run the command again under the recorded profile and report whether it behaves the same. */
  verify?: boolean;
}

export interface RecordResult {
  profile: OciSeccomp;
  /** Syscalls the app made (names), before the start-up set was added. */
  syscalls: string[];
  /** Syscall numbers with no name in our table (left out of the profile). */
  unknown: number[];
  exitCode: number | null;
  output: string;
  /** Exit code under the recorded profile, when verify was asked for. */
  verifiedExitCode?: number | null;
}

/**
 * Records the syscalls CMD makes, running it under runc (RuntimeDefault, the same config a
 * deployment gets) with bpftrace counting raw_syscalls:sys_enter for the container's cgroup.
 * runc's own processes are left out: comm "runc…", and "exe", the name runc 1.1's re-executed
 * /proc/self/exe carries until nsexec renames it (it mounts and unmounts in the new cgroup before
 * that: seen as mount/umount2 in some runs). An app binary literally named "exe" is recorded short,
 * which fails closed (the verify run shows it). what runc needs after the filter is loaded
 * is the start-up set, added by allowListProfile. Syscalls RuntimeDefault denies are never seen
 * at sys_enter (SPEC §8), so a recorded profile is always within RuntimeDefault.
 */
export async function recordProfile(opts: RecordOptions): Promise<RecordResult> {
  if (opts.args.length === 0) throw new CtError('USAGE', 'record: no command given', {});
  const facts = await collectFacts();
  if (!facts.cgroup.unifiedMount) throw new CtError('HOST_CANNOT_ENFORCE', 'record needs a cgroup v2 hierarchy to filter on', {});
  await ensureTracingMounts();
  const stateDir = await mkdtemp(join(tmpdir(), 'ct-record-'));
  const rt = await RuncRuntime.open({ stateDir, unifiedCgroupMount: facts.cgroup.unifiedMount });
  const rootfs = resolve(opts.rootfs);
  const suffix = stateDir.slice(-6).replace(/[^A-Za-z0-9]/g, 'x');
  const timeoutMs = opts.timeoutMs ?? 60000;
  const created: string[] = [];
  try {
    const id = `record-${suffix}`;
    const plan = await buildRuntimePlan(
      {
        id, rootfs, app: { name: 'record', imageDigest: `sha256:${'0'.repeat(64)}` },
        runtime: { ...opts.runtime, command: opts.args }, grants: opts.grants ?? {}, cgroupsPath: rt.cgroupsPathFor(id),
      },
      facts,
    );
    await rt.create(id, plan.config);
    created.push(id);
    const cgroupDir = rt.cgroupDir(id)!;
    const program =
      `tracepoint:raw_syscalls:sys_enter /cgroup == cgroupid(${bpftraceString(cgroupDir)}) && strncmp(comm, "runc", 4) != 0 && comm != "exe"/ { @s[args->id] = count(); }\n`;
    const tracer = spawnTool('bpftrace', ['-f', 'json', '-e', program], { stdio: ['ignore', 'pipe', 'pipe'] });
    let counts: Record<string, number> | undefined;
    let stderr = '';
    tracer.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const attached = new Promise<void>((ok, fail) => {
      tracer.on('error', (e: NodeJS.ErrnoException) =>
        fail(e.code === 'ENOENT' ? new CtError('HOST_TOOL_MISSING', 'bpftrace is not installed', { tool: 'bpftrace' }) : e));
      tracer.on('close', () => fail(new CtError('HOST_CANNOT_ENFORCE', `bpftrace exited before attaching: ${stderr.trim().slice(0, 500)}`, {})));
      createInterface({ input: tracer.stdout! }).on('line', (line) => {
        try {
          const msg = JSON.parse(line) as { type?: string; data?: Record<string, Record<string, number>> };
          if (msg.type === 'attached_probes') ok();
          if (msg.type === 'map' && msg.data?.['@s']) counts = msg.data['@s'];
        } catch {
          // blank separator lines
        }
      });
    });
    const closed = new Promise<void>((r) => tracer.once('close', () => r()));
    // bounded: a bpftrace that never reports its probes (seen once in a few hundred runs) must not
    // hang the recording; it is killed and the recording fails with a clear code
    const attachTimer = setTimeout(() => tracer.kill('SIGKILL'), ATTACH_TIMEOUT_MS);
    await attached.finally(() => clearTimeout(attachTimer));
    let exitCode: number | null;
    try {
      await rt.start(id);
      const done = await rt.wait(id, timeoutMs).catch(async () => {
        await rt.kill(id, 'KILL');
        return rt.wait(id, 10000);
      });
      exitCode = done.exitCode;
    } finally {
      // SIGINT makes bpftrace print its maps; one that does not exit within the grace is killed
      tracer.kill('SIGINT');
      const killTimer = setTimeout(() => tracer.kill('SIGKILL'), 10000);
      await closed;
      clearTimeout(killTimer);
    }
    // A program that ran made syscalls (exit_group at least): no counts means bpftrace lost them
    // (killed before it printed its map, on a starved machine), and an empty allow-list built from
    // that would be a wrong profile, not a strict one.
    if (!counts || Object.keys(counts).length === 0) {
      throw new CtError('HOST_CANNOT_ENFORCE', `bpftrace reported no syscall counts for the run: the recording is incomplete${stderr.trim() ? ` (${stderr.trim().slice(0, 300)})` : ''}`, {});
    }
    const output = await rt.logs(id);
    await rt.delete(id, { force: true });
    created.length = 0;

    const names = new Set<string>();
    const unknown: number[] = [];
    for (const nr of Object.keys(counts ?? {}).map(Number)) {
      const n = syscallName(nr, facts.architecture);
      if (n) names.add(n);
      else unknown.push(nr);
    }
    const profile = allowListProfile(names, { arch: facts.architecture, capabilities: plan.capabilities });
    const result: RecordResult = { profile, syscalls: [...names].sort(), unknown: unknown.sort((a, b) => a - b), exitCode, output };

    if (opts.verify) {
      const vid = `verify-${suffix}`;
      const vplan = await buildRuntimePlan(
        { id: vid, rootfs, app: { name: 'record', imageDigest: `sha256:${'0'.repeat(64)}` }, runtime: { ...opts.runtime, command: opts.args }, grants: opts.grants ?? {}, profiles: { seccomp: profile } },
        facts,
      );
      await rt.run(vid, vplan.config);
      created.push(vid);
      result.verifiedExitCode = (await rt.wait(vid, timeoutMs)).exitCode;
      await rt.delete(vid, { force: true });
      created.length = 0;
    }
    return result;
  } finally {
    // a failed recording leaves no container or cgroup behind
    for (const c of created) await rt.delete(c, { force: true }).catch(() => {});
    rt.close();
    await rm(stateDir, { recursive: true, force: true });
  }
}
