/**
 * Violation codes the policy engine reports. VCS verification codes are reused where they mean
 * the same thing (MISSING_ATTESTATION, INSUFFICIENT_LOG_COVERAGE, THRESHOLD_NOT_MET, UNCOVERED_FILE);
 * the others are this project's, documented in docs/error-codes.md ("Policy codes"). A violation
 * that denies makes `ct` exit 4 (policy rejection) unless it is an integrity failure passed on from
 * a verifier, which keeps its own exit code (SPEC §2).
 */
export const VIOLATION_CODES = {
  NO_POLICY: 'no policy matches the bundle on this host, or only expired ones do',
  SIGNER_NOT_ALLOWED: 'no verified attestation is signed by a signer the policy allows (v1: an attestation signed by another key)',
  MISSING_ATTESTATION: 'a required predicate type has no verified attestation from an allowed signer',
  PREDICATE_CONDITION_FAILED: 'attestations of the required type exist but none satisfies the predicate conditions',
  INSUFFICIENT_LOG_COVERAGE: 'the attestation is in fewer distinct log operators than logQuorum',
  THRESHOLD_NOT_MET: 'fewer than k distinct signers of a threshold group signed',
  UNCOVERED_FILE: 'manifest.toml or a security/ file the runtime rules read is not covered by a verified attestation',
  SECCOMP_REQUIRED: 'the policy requires a seccomp profile and the bundle ships none',
  SECCOMP_NOT_CONFINING: 'the seccomp profile does not confine: default action is not ERRNO or KILL, or it is malformed',
  SECCOMP_NOTIFY: 'the seccomp profile hands syscalls to a user-space notify listener',
  SECCOMP_SPEC_ALLOW: 'the seccomp profile sets SECCOMP_FILTER_FLAG_SPEC_ALLOW (disables speculative-execution mitigation)',
  SECCOMP_SYSCALL_NOT_ALLOWED: "the seccomp profile allows syscalls outside RuntimeDefault's set and the policy's extras",
  HOST_SECCOMP_UNAVAILABLE: 'the target host cannot enforce seccomp',
  APPARMOR_REQUIRED: 'the policy requires an AppArmor profile and the bundle ships none',
  APPARMOR_UNCONFINED: 'the AppArmor profile has unconfined execution (ux/Ux/pux/cux), an unconfined or complain flag',
  HOST_APPARMOR_NOT_ENFORCING: 'the target host does not enforce AppArmor and the policy does not allow that',
  SELINUX_REQUIRED: 'the policy requires an SELinux policy (security/selinux/policy.cil) and the bundle ships none',
  HOST_SELINUX_UNAVAILABLE: 'the policy requires SELinux and the target host does not enforce it',
  MONITORING_REQUIRED: 'the policy requires eBPF monitoring rules and the bundle ships no security/monitor.yaml',
  HOST_EBPF_UNAVAILABLE: 'the policy requires monitoring and the target host has no eBPF',
  CAPABILITY_NOT_ALLOWED: 'the bundle asks for a capability the policy does not allow',
  RESOURCE_LIMIT_EXCEEDED: 'the bundle asks for more memory, CPU or processes than the environment allows',
  RUNS_AS_ROOT: 'the policy requires a non-root user and the bundle runs as root or names no user',
  ROOTFS_WRITABLE: 'the policy requires a read-only root filesystem',
  PRIVILEGED: 'the bundle asks to run privileged',
  NOT_VERIFIED_IN: 'requireVerifiedIn: no deploy VSA signed by a deployers key shows this bundle ran in a required environment',
} as const;

export type ViolationCode = keyof typeof VIOLATION_CODES;
