/**
 * Where the pod spec sits in each kind this webhook admits, and the containers in it. Paths are
 * kept as JSON Pointers (RFC 6901) because the mutating answer is a JSON Patch against the very
 * object the API server sent.
 */
import { CtError } from '../core/errors.js';
import type { GroupVersionKind } from './admission-review.js';

const TEMPLATE = ['spec', 'template', 'spec'];

/** `group/version/Kind` → path of the PodSpec inside the object. */
export const POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  '/v1/Pod': ['spec'],
  '/v1/ReplicationController': TEMPLATE,
  'apps/v1/Deployment': TEMPLATE,
  'apps/v1/StatefulSet': TEMPLATE,
  'apps/v1/DaemonSet': TEMPLATE,
  'apps/v1/ReplicaSet': TEMPLATE,
  'batch/v1/Job': TEMPLATE,
  'batch/v1/CronJob': ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

export const CONTAINER_LISTS = ['initContainers', 'containers', 'ephemeralContainers'] as const;
export type ContainerList = (typeof CONTAINER_LISTS)[number];

/** Far above any real pod; a request past it is denied rather than worked through. */
export const MAX_CONTAINERS = 1000;

export interface ContainerRef {
  list: ContainerList;
  index: number;
  name: string;
  image: string;
  /** JSON Pointer of the container object. */
  pointer: string;
  securityContext?: Record<string, unknown>;
}

export interface PodSpecRef {
  /** JSON Pointer of the PodSpec. */
  pointer: string;
  spec: Record<string, unknown>;
  containers: ContainerRef[];
}

/** A JSON object (not null, not an array): what a field of a Kubernetes object must be to be read. */
export const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function kindKey(k: GroupVersionKind): string {
  return `${k.group}/${k.version}/${k.kind}`;
}

export function isAdmittedKind(k: GroupVersionKind): boolean {
  return kindKey(k) in POD_SPEC_PATHS;
}

const escape = (s: string) => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** Finds the PodSpec and its containers; any missing or ill-typed field is ADMISSION_INVALID. */
export function podSpecOf(kind: GroupVersionKind, object: unknown): PodSpecRef {
  const path = POD_SPEC_PATHS[kindKey(kind)];
  if (!path) throw new CtError('ADMISSION_UNSUPPORTED_KIND', `kind ${kindKey(kind)} is not admitted by this webhook (Pods and the pod templates of Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and CronJobs are)`, { kind: kindKey(kind) });
  let node: unknown = object;
  for (const [i, seg] of path.entries()) {
    if (!isObj(node) || !isObj(node[seg])) throw new CtError('ADMISSION_INVALID', `${kind.kind}: .${path.slice(0, i + 1).join('.')} is missing or not an object`, { field: path.slice(0, i + 1).join('.') });
    node = node[seg];
  }
  const spec = node as Record<string, unknown>;
  const pointer = `/${path.map(escape).join('/')}`;
  const containers: ContainerRef[] = [];
  for (const list of CONTAINER_LISTS) {
    const arr = spec[list];
    if (arr === undefined || arr === null) continue;
    if (!Array.isArray(arr)) throw new CtError('ADMISSION_INVALID', `${kind.kind}: ${list} is not a list`, { field: list });
    if (containers.length + arr.length > MAX_CONTAINERS) throw new CtError('ADMISSION_TOO_LARGE', `${kind.kind} has more than ${MAX_CONTAINERS} containers`, { limit: MAX_CONTAINERS });
    arr.forEach((c, index) => {
      if (!isObj(c) || typeof c.name !== 'string' || typeof c.image !== 'string' || c.image.length === 0) {
        throw new CtError('ADMISSION_INVALID', `${kind.kind}: ${list}[${index}] needs a name and an image`, { field: `${list}[${index}]` });
      }
      if (c.securityContext !== undefined && c.securityContext !== null && !isObj(c.securityContext)) throw new CtError('ADMISSION_INVALID', `${kind.kind}: ${list}[${index}].securityContext is not an object`, {});
      containers.push({ list, index, name: c.name.slice(0, 253), image: c.image, pointer: `${pointer}/${list}/${index}`, ...(isObj(c.securityContext) ? { securityContext: c.securityContext } : {}) });
    });
  }
  if (!containers.some((c) => c.list === 'containers') && kind.kind !== 'Pod') {
    throw new CtError('ADMISSION_INVALID', `${kind.kind}: the pod template has no containers`, { field: 'containers' });
  }
  return { pointer, spec, containers };
}
