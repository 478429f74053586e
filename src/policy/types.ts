/**
 * The policy engine's model: what a policy says once it has been loaded and compiled, what the
 * engine is given (verified evidence, the bundle's declared facts, the target host's facts) and
 * what it answers (a decision with violations). Wire formats (v1 JSON, v2 YAML/JSON) are turned
 * into `CompiledPolicy` by compile.ts before anything is evaluated, so the evaluator never touches
 * raw documents.
 */
import type { Evidence, Finding, Mode } from '../verify/evidence.js';
import type { ViolationCode } from './codes.js';

export type { Mode };

/** Where a piece of a policy came from, for every message a user sees. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
}

/** A string test compiled once: exact value, glob, anchored regex or one of a list. */
export interface StringMatcher {
  /** How the policy wrote it, for messages and diffs. */
  readonly source: string;
  test(value: string | undefined): boolean;
  /** The exact values it accepts, when it is a finite list (exact, oneOf). */
  readonly literals?: readonly string[];
  /** Every accepted value starts with this (globs). */
  readonly prefix?: string;
}

export interface SignerSpec {
  /** Name used in messages, defaults to a rendering of the spec. */
  label: string;
  keyId?: string;
  role?: string;
  issuer?: string;
  subject?: StringMatcher;
  claims?: [name: string, matcher: StringMatcher][];
  at: SourceLocation;
}

export type ValueCondition =
  | { kind: 'equals'; value: string | number | boolean }
  | { kind: 'string'; matcher: StringMatcher }
  | { kind: 'exists'; value: boolean };

export interface PredicateCondition {
  /** Dotted path into the predicate; `*` = any element of an array or any value of an object. */
  path: string[];
  pathText: string;
  test: ValueCondition;
  at: SourceLocation;
}

export interface AttestationRequirement {
  predicateType: string;
  conditions: PredicateCondition[];
  /** Overrides the policy's signers for this predicate. */
  signers?: SignerSpec[];
  at: SourceLocation;
}

export interface ThresholdRule {
  name: string;
  k: number;
  signers: SignerSpec[];
  predicateType?: string;
  at: SourceLocation;
}

export type SeccompLevel = 'confining' | 'runtime-default';

export interface RuntimeRules {
  seccomp?: { level: SeccompLevel; allowNotify: boolean; allowSpecAllow: boolean; extraSyscalls: Set<string>; at: SourceLocation };
  apparmor?: { allowUnenforcedHost: boolean; at: SourceLocation };
  selinux?: { at: SourceLocation };
  monitoring?: { at: SourceLocation };
  capabilities?: { allowed: Set<string>; at: SourceLocation };
  nonRoot?: SourceLocation;
  readOnlyRootfs?: SourceLocation;
  /** Upper limits of `[runtime.resources]` (bytes, CPUs, pids); also the host's default when the bundle asks none. */
  resources?: { memory?: number; cpus?: number; pids?: number; at: SourceLocation };
  /** Privileged bundles are refused whenever a runtime section exists, unless allowed. */
  allowPrivileged: boolean;
  /** What the environment's apps may publish and reach (judged on the host, with the assignment's ports). */
  network?: { publish: PublishRule[]; egress?: Egress; at: SourceLocation };
  at: SourceLocation;
}

/**
 * Where an app's connections may go: `any` (masqueraded to the outside), `environment` (apps of
 * its environment and the host), `none` (apps of its environment only; the host answers DNS).
 */
export type Egress = 'none' | 'environment' | 'any';

/** One rule of what may be published: a host-port range, addresses (default 127.0.0.1), protocols (default tcp). */
export interface PublishRule {
  ports: { from: number; to: number };
  addresses?: readonly string[];
  protocols?: readonly ('tcp' | 'udp' | 'sctp')[];
}

export interface MatchRules {
  all: boolean;
  environments?: StringMatcher[];
  registries?: StringMatcher[];
  sourceRepositories?: StringMatcher[];
  /** Bundle names: count only when one of the policy's signers signed `manifest.toml`. */
  names?: StringMatcher[];
  at: SourceLocation;
}

export interface CompiledPolicy {
  name: string;
  format: 'v1' | 'v2';
  mode: Mode;
  file: string;
  /** sha256 of the source bytes, for the set's digest and for diffs. */
  digest: string;
  match: MatchRules;
  signers: SignerSpec[];
  /** v1 (upstream's gate): every verified attestation must come from an allowed signer. */
  onlyAllowedSigners: boolean;
  attestations: AttestationRequirement[];
  logQuorum: number;
  thresholds: ThresholdRule[];
  runtime?: RuntimeRules;
  /** Environments whose deploy VSA (signed by a `deployers` key) this bundle must have. */
  requireVerifiedIn?: { environments: string[]; at: SourceLocation };
  expires?: { time: number; text: string; at: SourceLocation };
  notes?: string;
  at: SourceLocation;
}

/** What a target host reports about itself (SPEC §8–9). */
export interface HostFacts {
  environment: string;
  seccomp?: boolean;
  apparmor?: { present: boolean; enforcing: boolean };
  selinux?: { present: boolean; enforcing: boolean };
  ebpf?: boolean;
  cgroup?: string;
  arch?: string;
}

/** The `[runtime]` table of manifest.toml, as the bundle declares it. */
export interface RuntimeManifest {
  user?: string;
  read_only_rootfs?: boolean;
  capabilities?: string[];
  privileged?: boolean;
  [k: string]: unknown;
}

/** What the bundle itself carries: manifest fields and its security/ files. */
export interface BundleFacts {
  name?: string;
  version?: string;
  image_digest?: string;
  runtime?: RuntimeManifest;
  security?: {
    /** Parsed security/seccomp.json (OCI linux.seccomp object). */
    seccomp?: unknown;
    /** Text of security/apparmor. */
    apparmor?: string;
    /** security/monitor.yaml is present. */
    monitor?: boolean;
    /** Text of security/selinux/policy.cil. */
    selinux?: string;
  };
}

export interface PolicyInput {
  evidence: Evidence;
  manifest: BundleFacts;
  host: HostFacts;
  /** What the verifiers found wrong; `integrity: true` findings deny in every mode. */
  findings?: Finding[];
  /** Evaluation time (ms since epoch), for `expires`; defaults to now. */
  now?: number;
  /** Operator override of every policy's mode (SPEC §4: the command line may set it). */
  mode?: Mode;
  /** Environments in which a verified deploy VSA names this bundle (src/attest/vsa.ts). */
  verifiedIn?: string[];
}

export interface Violation {
  code: ViolationCode | string;
  /** Policy name, or `(verifier)` for the verifiers' findings, `(engine)` for NO_POLICY. */
  policy: string;
  /** Which rule: `signers`, `attestations[0]`, `runtime.seccomp`, … */
  rule: string;
  message: string;
  /** What was seen (identities, values, counts), bounded in size. */
  evidence: Record<string, unknown>;
  /** The mode of the policy that raised it. */
  mode: Mode;
  integrity?: boolean;
  at?: SourceLocation;
}

export interface Decision {
  allow: boolean;
  mode: Mode;
  /** Violations that decided a deny (strict policies, integrity failures, NO_POLICY). */
  violations: Violation[];
  /** Violations that did not block: permissive and audit policies. */
  warnings: Violation[];
  /** Names of the policies that applied, sorted. */
  policies: string[];
  policyDigest: string;
}
