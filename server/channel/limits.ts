/**
 * Bounds of the host channel (config `hostChannel`, docs/server.md): what a client that has not
 * authenticated may hold, and how many statuses an authenticated host has published.
 */
export interface HostChannelLimits {
  /** Connections not yet authenticated, from every address together (default 512). */
  maxPending?: number;
  /** Connections not yet authenticated from one address (an IPv6 address's /64) (default 128). */
  maxPendingPerAddress?: number;
  /** From the upgrade to the host's accepted hello; past it the socket is destroyed (default 10000 ms). */
  handshakeMs?: number;
  /**
   * After authentication: how often each end pings the other (WebSocket ping); a host that
   * answers no ping for two intervals is disconnected (default 30000 ms).
   */
  pingMs?: number;
  /** Statuses a host may have published to event subscribers at once (default 100). */
  statusBurst?: number;
  /** How fast that allowance comes back, per second (default 20). */
  statusPerSecond?: number;
}

export const HOST_CHANNEL_DEFAULTS: Required<HostChannelLimits> = {
  maxPending: 512, maxPendingPerAddress: 128, handshakeMs: 10_000, pingMs: 30_000, statusBurst: 100, statusPerSecond: 20,
};
