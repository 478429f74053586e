import type { PublishedPort } from '../../src/protocol/ports.js';

export type { PublishedPort };

/**
 * Where an app's connections may go (policy `runtime.network.egress`): `any` (masqueraded to the
 * outside), `environment` (only apps of its environment, by name through aardvark-dns, and the
 * host), `none` (only apps of its environment: nothing leaves the bridge and the host answers
 * only DNS).
 */
export type Egress = 'none' | 'environment' | 'any';

/** One policy rule of what an environment may publish (`runtime.network.publish[]`). */
export interface PublishRule {
  /** Inclusive host-port range. */
  ports: { from: number; to: number };
  /** Host addresses allowed; absent = 127.0.0.1 only. */
  addresses?: readonly string[];
  /** Protocols allowed; absent = tcp only. */
  protocols?: readonly PublishedPort['protocol'][];
}

/** What the policies grant an app's network on the host (RuntimeGrants.network). */
export interface NetworkGrants {
  /** Absent or empty: nothing may be published. */
  publish?: readonly PublishRule[];
  /** Most restrictive of the applying policies; default `environment`. */
  egress?: Egress;
}
