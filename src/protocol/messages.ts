import type { PublishedPort } from './ports.js';

/**
 * The server ↔ host channel (docs/host-protocol.md). Wire types shared by `server/` and `host/`,
 * which never import each other. The handshake (challenge, hello) is in handshake.ts; every message
 * after it travels in a MAC frame under the session keys (session-keys.ts).
 */
/** What a host can enforce, measured on the host (host/facts.ts) and reported at every connect. */
export interface HostFacts {
  kernel: string;
  /** Go-style architecture (amd64, arm64, …), the name seccomp profiles and images use. */
  architecture: string;
  runc: { present: boolean; version?: string; spec?: string; libseccomp?: string };
  seccomp: { available: boolean; actions: string[] };
  apparmor: { present: boolean; enforcing: boolean; parser: boolean; reason?: string };
  /** Absent from hosts that predate SELinux support: read as not enforcing. */
  selinux?: { present: boolean; enforcing: boolean; reason?: string };
  ebpf: { tracefs: boolean; bpffs: boolean; bpftrace: boolean; bpftraceVersion?: string; usable: boolean };
  cgroup: { version: 'v1' | 'v2' | 'hybrid'; unifiedMount?: string };
  userNamespaces: { available: boolean; max: number };
}

/** `suspended`: stopped and held because the desired state says `suspended: true` (not removed). */
export type ContainerState = 'created' | 'running' | 'paused' | 'stopped' | 'removed' | 'refused' | 'failed' | 'suspended';

export interface Assignment {
  deploymentId: string;
  /** Strictly increasing per host: an older assignment can never downgrade a host. */
  generation: number;
  environment: string;
  app: string;
  bundle: string;
  bundleDigest: string;
  imageDigest: string;
  /** Path on the server to download the bundle bytes from (host-authenticated). */
  download: string;
  /** Host ports the desired state publishes (bridge network); the host checks them against its policies. */
  ports?: PublishedPort[];
  /**
   * Deploy VSAs (canonical DSSE JSON) of this bundle from other environments, at most 8: the host
   * verifies them with its own trust store for its policies' `requireVerifiedIn`.
   */
  vsas?: string[];
  /**
   * The desired state marks the app `suspended: true`: the host stops its container (SIGTERM, grace,
   * SIGKILL) and keeps it, held against the restart policy, and answers `suspended`. A later
   * assignment without it starts the app again.
   */
  suspended?: boolean;
}

/**
 * What a server understands beyond the base v2 protocol, listed in its `welcome` (a host sends
 * the newer form only to a server that lists it; a server accepts both forms from any host):
 * `status.containers`: a status may carry the inventory that follows it, in the same frame.
 */
export const CHANNEL_FEATURES = ['status.containers'] as const;
export type ChannelFeature = (typeof CHANNEL_FEATURES)[number];

export type ServerMessage =
  /**
   * `admission`: a ticket the host presents (header `x-ct-admission`) when it opens its next
   * channel, for a pending place kept for its host id that a flood from its address cannot take
   * (docs/host-protocol.md); older servers send none.
   */
  | { type: 'welcome'; hostId: string; generation: number; features?: ChannelFeature[]; admission?: string }
  | { type: 'assign'; assignment: Assignment }
  | { type: 'stop'; deploymentId: string; generation: number }
  /** A lifecycle action on one container (answered by a host `action` message with the same id). */
  | { type: 'action'; requestId: string; container: string; action: ContainerAction; signal?: string; graceSeconds?: number }
  /**
   * Asks for the tail of a container's log, or with `since` (a cursor, protocol/logs.ts) for the
   * lines after it (answered by a host `logs` message with the same id).
   */
  | { type: 'logs'; requestId: string; container: string; maxBytes: number; since?: string }
  | { type: 'error'; code: string; message: string };

import type { LogLine } from './logs.js';

export type HostMessage =
  /**
   * `containers`: the inventory after the assignment (or stop) this status answers, sent with it in
   * one frame to a server whose welcome lists `status.containers`; read as a `containers` message
   * that follows the status. Older hosts send that message on its own.
   */
  | { type: 'status'; deploymentId: string; generation: number; state: ContainerState; exitCode?: number | null; code?: string; message?: string; containers?: InventoryItem[] }
  | { type: 'event'; deploymentId?: string; event: { kind: string; detail: string; time: string; [k: string]: unknown } }
  | { type: 'containers'; containers: InventoryItem[] }
  | { type: 'logs'; requestId: string; container: string; text?: string; lines?: LogLine[]; cursor?: string; code?: string }
  | { type: 'action'; requestId: string; container: string; state?: ContainerState; code?: string; message?: string };

/** What an operator may do to a running app (docs/host-protocol.md "Lifecycle"). */
export type ContainerAction = 'stop' | 'start' | 'restart' | 'kill' | 'pause' | 'resume' | 'remove';
export const CONTAINER_ACTIONS: readonly ContainerAction[] = ['stop', 'start', 'restart', 'kill', 'pause', 'resume', 'remove'];
/** Signals `kill` may send (names without SIG). */
export const KILL_SIGNALS = ['TERM', 'KILL', 'INT', 'HUP', 'QUIT', 'USR1', 'USR2'] as const;
export type KillSignal = (typeof KILL_SIGNALS)[number];

export type ContainerHealth = 'none' | 'starting' | 'healthy' | 'unhealthy';

/** One container as the host's runtime knows it; the server compares these with desired state (drift). */
export interface InventoryItem {
  id: string;
  app: string | null;
  imageDigest: string | null;
  state: ContainerState;
  exitCode?: number | null;
  /** OOM_KILLED when the kernel's OOM killer ended it. */
  exitReason?: string | null;
  health?: ContainerHealth;
  /** Restarts by the restart policy. */
  restarts?: number;
  /** Exit code of the run the restart policy last restarted. */
  lastExitCode?: number | null;
  /** Stopped and held because its assignment suspended it (desired state `suspended: true`). */
  suspended?: boolean;
}
