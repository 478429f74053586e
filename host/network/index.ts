export { NetworkManager, type AttachRequest, type Attached, type NetworkManagerOptions } from './manager.js';
export { checkPublishedPorts } from './publish-policy.js';
export { dnsNameOf, findNetavark } from './netavark.js';
export type { Egress, NetworkGrants, PublishRule, PublishedPort } from './types.js';
