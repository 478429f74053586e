import { chmod, mkdir, rm } from 'node:fs/promises';
import { checkOciLayout } from '../../src/bundle/check-layout.js';
import { applyLayersOffThread } from '../../src/bundle/unpack-thread/index.js';
import { removeStaleTemps } from '../../src/core/fs.js';
import type { CtpArchive } from '../../src/bundle/archive.js';
import type { VerificationReport } from '../../src/verify/report.js';
import { evaluate } from '../../src/policy/evaluate.js';
import type { PolicySet } from '../../src/policy/policy-set.js';
import type { BundleFacts, Decision } from '../../src/policy/types.js';
import { policyHostFacts } from '../../src/protocol/policy-facts.js';
import type { HostFacts } from '../../src/protocol/messages.js';
import { buildRuntimePlan } from '../enforce/index.js';
import { monitorAnnotations } from '../monitor/containers.js';
import type { EnforcePlan, ImageDefaults, RuntimeGrants } from '../enforce/types.js';

/**
 * The steps every run of a verified bundle on this machine shares, whether a deploy server
 * assigned it (agent/runner.ts) or a user asked for it (`ct run`, host/run): the policies judge it
 * with this host's facts, then its root filesystem is unpacked from the very archive that was
 * verified (applyLayers re-hashes every layer as it extracts it, on the unpack thread) and its OCI config is built.
 */
export function judge(set: PolicySet, report: VerificationReport, manifest: BundleFacts, facts: HostFacts, environment: string, verifiedIn: string[] = []): Decision {
  return evaluate(set, {
    evidence: report.evidence,
    manifest,
    host: policyHostFacts(facts, environment),
    findings: report.findings.filter((f) => f.integrity),
    verifiedIn,
  });
}

export interface UnpackRequest {
  id: string;
  /** The root filesystem directory (emptied first). */
  dir: string;
  app: { name: string; imageDigest: string };
  grants: RuntimeGrants;
  manifest: BundleFacts;
  cgroupsPath: string;
}

export async function unpackAndPlan(archive: CtpArchive, r: UnpackRequest, facts: HostFacts): Promise<EnforcePlan> {
  const image = checkOciLayout(archive);
  // The bundle's monitoring rules go with the container's config (host/monitor/containers.ts):
  // checked now, before anything is unpacked.
  const monitor = monitorAnnotations(archive, r.grants);
  await rm(r.dir, { recursive: true, force: true });
  // What an unpack to the same place interrupted by a crash left (never used) goes first: whole
  // trees, removed recursively as r.dir itself just was, which is sound only because they lie in
  // the state directory, which no other user can write (private-trees, src/core/fs.ts).
  await removeStaleTemps(r.dir, { kind: 'private-trees' });
  await mkdir(r.dir, { recursive: true });
  // On the unpack thread (src/bundle/unpack-thread): hashed, checked and renamed into place there.
  await applyLayersOffThread(archive, r.dir);
  // runc creates a missing mount point 0755 and later gives the tmpfs over it that mode: the
  // first run would get a writable /tmp and every restart from this root filesystem not.
  await mkdir(`${r.dir}/tmp`).then(() => chmod(`${r.dir}/tmp`, 0o1777), () => undefined);
  const cfg = (image.config as { config?: Record<string, unknown> }).config ?? {};
  const plan = await buildRuntimePlan(
    {
      id: r.id,
      rootfs: r.dir,
      app: r.app,
      runtime: archive.manifest.runtime,
      image: { entrypoint: cfg.Entrypoint, cmd: cfg.Cmd, env: cfg.Env, workingDir: cfg.WorkingDir, user: cfg.User } as ImageDefaults,
      grants: r.grants,
      profiles: { seccomp: r.manifest.security?.seccomp, apparmor: r.manifest.security?.apparmor, selinux: r.manifest.security?.selinux },
      // A known cgroup per container: its limits (runtime.resources) and its OOM reports.
      cgroupsPath: r.cgroupsPath,
    },
    facts,
  );
  if (Object.keys(monitor).length > 0) plan.config.annotations = { ...plan.config.annotations, ...monitor };
  return plan;
}
