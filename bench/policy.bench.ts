// Policy engine benchmarks (issue 4): decisions per second with a 50-policy repository and
// pre-verified evidence (target ≥ 50,000/s on one core), and loading + compiling 500 policy files
// (target ≤ 1 s). Each absolute target is printed as a ratio (value / target), beside a same-run
// baseline that shows how much of the time is the engine itself.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { compileTexts, evaluate, loadPolicies, type PolicyInput } from '../src/policy/index.js';
import { timeMs, type BenchResult } from './harness.js';

const KEY = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const SLSA = 'https://slsa.dev/provenance/v1';
const SPDX = 'https://spdx.dev/Document';

/** A realistic policy: environment scope, keyless + key signers, predicates with a condition, runtime rules. */
function policyText(i: number, env: string): string {
  return `apiVersion: cerro-torre.dev/v2
kind: Policy
name: team-${i}
mode: ${i % 5 === 0 ? 'permissive' : 'strict'}
match:
  environments: [${env}]
signers:
  - issuer: https://token.actions.githubusercontent.com
    subject: { regex: '^https://github\\.com/org-${i}/[A-Za-z0-9_.-]+/\\.github/workflows/release\\.yml@refs/heads/main$' }
    claims:
      runnerEnvironment: github-hosted
      sourceRepositoryRef: { regex: '^refs/(heads/main|tags/v[0-9][A-Za-z0-9.+-]*)$' }
  - keyId: ${KEY(i + 1)}
attestations:
  - predicateType: ${SLSA}
    conditions:
      - path: buildDefinition.resolvedDependencies.0.uri
        regex: '^git\\+https://github\\.com/org-${i}/[A-Za-z0-9_.-]+@refs/heads/main$'
  - predicateType: ${SPDX}
logQuorum: 2
runtime:
  seccomp: { profile: confining }
  capabilities: { allowed: [NET_BIND_SERVICE] }
  nonRoot: true
  readOnlyRootfs: true
`;
}

function inputFor(i: number, env: string): PolicyInput {
  const signer = {
    kind: 'keyless' as const,
    issuer: 'https://token.actions.githubusercontent.com',
    subject: `https://github.com/org-${i}/app/.github/workflows/release.yml@refs/heads/main`,
    claims: { runnerEnvironment: 'github-hosted', sourceRepositoryRef: 'refs/heads/main', sourceRepositoryUri: `https://github.com/org-${i}/app` },
  };
  const att = (predicateType: string, predicate: unknown) => ({
    digest: KEY(999), source: 'sigstore' as const, predicateType, predicate, signers: [signer], logEntries: [], logOperators: ['rekor', 'vcs-log'],
    subjects: [{ name: 'app', digest: { sha256: 'a'.repeat(64) } }, { name: 'manifest.toml', digest: { sha256: 'b'.repeat(64) } }],
  });
  return {
    evidence: { imageDigest: KEY(7), attestations: [att(SLSA, { buildDefinition: { resolvedDependencies: [{ uri: `git+https://github.com/org-${i}/app@refs/heads/main` }] } }), att(SPDX, {})] },
    manifest: {
      name: 'app',
      runtime: { user: '1000', read_only_rootfs: true, capabilities: ['CAP_NET_BIND_SERVICE'] },
      security: { seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read', 'write', 'openat', 'close', 'mmap', 'exit_group', 'futex', 'epoll_pwait'], action: 'SCMP_ACT_ALLOW' }] } },
    },
    host: { environment: env, seccomp: true, ebpf: true, arch: 'amd64' },
    now: Date.parse('2026-06-01T00:00:00Z'),
  };
}

async function decisions(): Promise<BenchResult[]> {
  const texts = Array.from({ length: 50 }, (_, i) => ({ file: `p${i}.policy.yaml`, text: policyText(i, `env-${i}`) }));
  const loaded = compileTexts(texts);
  if (!loaded.set) throw new Error(JSON.stringify(loaded.issues.slice(0, 3)));
  const set = loaded.set;
  // Pre-verified evidence for deployments spread over the 50 environments (1 in 10 unmatched).
  const inputs = Array.from({ length: 64 }, (_, k) => (k % 10 === 9 ? inputFor(k % 50, 'nowhere') : inputFor(k % 50, `env-${k % 50}`)));
  const first = evaluate(set, inputs[0]);
  if (!first.allow) throw new Error(`benchmark input is not allowed: ${JSON.stringify(first.violations)}`);
  const N = 200_000;
  const loop = (fn: (i: PolicyInput) => unknown) => {
    let sink = 0;
    const t0 = process.hrtime.bigint();
    for (let n = 0; n < N; n++) sink += fn(inputs[n & 63]) ? 1 : 0;
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (sink < 0) console.log(sink);
    return N / s;
  };
  loop((i) => evaluate(set, i).allow); // warm-up
  const perSec = loop((i) => evaluate(set, i).allow);
  // Same-run baseline: a trivial evaluation that only scans the 50 policies' environment matchers.
  const trivial = loop((i) => set.policies.some((p) => p.match.environments?.some((m) => m.test(i.host.environment))));
  return [
    { name: 'policy decisions/s (50 policies, pre-verified evidence) vs 50,000/s target', value: perSec, baseline: 50_000, unit: 'decisions/s', better: 'higher', target: { min: 1 } },
    { name: 'policy decision vs trivial match-only scan', value: perSec, baseline: trivial, unit: 'ops/s', better: 'higher', note: 'share of a bare scan over 50 policies; informative' },
  ];
}

async function loading(): Promise<BenchResult[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ct-policy-bench-'));
  try {
    await Promise.all(Array.from({ length: 500 }, (_, i) => writeFile(join(dir, `p${String(i).padStart(3, '0')}.policy.yaml`), policyText(i, `env-${i}`))));
    const ms = await timeMs(() => loadPolicies([dir]), 3);
    // Same-run baseline: reading and YAML-parsing the same files, without schema or compilation.
    const base = await timeMs(async () => {
      await Promise.all(Array.from({ length: 500 }, async (_, i) => parse(await readFile(join(dir, `p${String(i).padStart(3, '0')}.policy.yaml`), 'utf8'))));
    }, 3);
    return [
      { name: 'load + compile 500 policy files vs 1 s target', value: ms, baseline: 1000, unit: 'ms', better: 'lower', target: { max: 1 } },
      { name: 'load + compile 500 policy files vs read + YAML parse only', value: ms, baseline: base, unit: 'ms', better: 'lower', note: 'cost of schema validation, regex checks and compilation; informative' },
    ];
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export async function run(): Promise<BenchResult[]> {
  return [...(await decisions()), ...(await loading())];
}
