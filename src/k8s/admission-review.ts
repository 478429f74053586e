/**
 * AdmissionReview v1 (admission.k8s.io/v1) as the API server sends and expects it: the request is
 * checked field by field before anything reads it, and every answer is built here, so no code path
 * can hand the API server a response it would take as `allowed` by accident (a missing `allowed`
 * is false; a uid that does not echo the request's is refused by the API server, i.e. denied under
 * failurePolicy Fail).
 */
export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface AdmissionRequest {
  uid: string;
  kind: GroupVersionKind;
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  namespace?: string;
  name?: string;
  operation: Operation;
  object?: unknown;
  /** The object before an UPDATE (what was admitted then). */
  oldObject?: unknown;
  dryRun: boolean;
}

export interface AdmissionStatus {
  code: number;
  message: string;
  reason?: string;
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: AdmissionStatus;
  warnings?: string[];
  patchType?: 'JSONPatch';
  patch?: string;
}

export interface AdmissionReviewOut {
  apiVersion: typeof ADMISSION_API_VERSION;
  kind: 'AdmissionReview';
  response: AdmissionResponse;
}

/** The API server shows warnings to users; keep them few and short (it truncates past 120 runes). */
const MAX_WARNINGS = 16;
const MAX_WARNING = 256;
const MAX_MESSAGE = 2048;
const UID_RE = /^[A-Za-z0-9-]{1,128}$/;
const OPERATIONS = new Set<Operation>(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

export type ParsedReview = { ok: true; request: AdmissionRequest } | { ok: false; uid?: string; message: string };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): v is string => typeof v === 'string';

/** Checks an AdmissionReview body; every problem found is named in the message. */
export function parseReview(body: unknown): ParsedReview {
  if (!isObj(body)) return { ok: false, message: 'the body is not a JSON object' };
  const problems: string[] = [];
  if (body.apiVersion !== ADMISSION_API_VERSION) problems.push(`apiVersion must be ${ADMISSION_API_VERSION}`);
  if (body.kind !== 'AdmissionReview') problems.push('kind must be AdmissionReview');
  const r = body.request;
  if (!isObj(r)) return { ok: false, message: [...problems, 'request is missing'].join('; ') };
  const uid = str(r.uid) && UID_RE.test(r.uid) ? r.uid : undefined;
  if (!uid) problems.push('request.uid is missing or not a UID');
  const kind = gvk(r.kind);
  if (!kind) problems.push('request.kind must be {group, version, kind}');
  const res = isObj(r.resource) && str(r.resource.group) && str(r.resource.version) && str(r.resource.resource) ? { group: r.resource.group, version: r.resource.version, resource: r.resource.resource } : undefined;
  if (!res) problems.push('request.resource must be {group, version, resource}');
  if (!str(r.operation) || !OPERATIONS.has(r.operation as Operation)) problems.push('request.operation must be CREATE, UPDATE, DELETE or CONNECT');
  for (const f of ['namespace', 'name', 'subResource'] as const) if (r[f] !== undefined && !str(r[f])) problems.push(`request.${f} must be a string`);
  if (r.dryRun !== undefined && typeof r.dryRun !== 'boolean') problems.push('request.dryRun must be a boolean');
  if (problems.length > 0 || !uid || !kind || !res) return { ok: false, uid, message: problems.join('; ') };
  return {
    ok: true,
    request: {
      uid,
      kind,
      resource: res,
      operation: r.operation as Operation,
      dryRun: r.dryRun === true,
      object: r.object ?? undefined,
      ...(r.oldObject !== undefined && r.oldObject !== null ? { oldObject: r.oldObject } : {}),
      ...(str(r.namespace) && r.namespace ? { namespace: r.namespace } : {}),
      ...(str(r.name) && r.name ? { name: r.name } : {}),
      ...(str(r.subResource) && r.subResource ? { subResource: r.subResource } : {}),
    },
  };
}

function gvk(v: unknown): GroupVersionKind | undefined {
  if (!isObj(v) || !str(v.group) || !str(v.version) || !str(v.kind) || !v.version || !v.kind) return undefined;
  return { group: v.group, version: v.version, kind: v.kind };
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function boundedWarnings(w: readonly string[] | undefined): string[] | undefined {
  if (!w || w.length === 0) return undefined;
  // Warnings are printed by kubectl: no control characters, bounded count and length.
  // eslint-disable-next-line no-control-regex
  const out = [...new Set(w)].slice(0, MAX_WARNINGS).map((s) => clip(s.replace(/[\u0000-\u001f\u007f]/g, ' '), MAX_WARNING));
  if (w.length > MAX_WARNINGS) out.push(`… and ${w.length - MAX_WARNINGS} more warnings`);
  return out;
}

export function review(response: AdmissionResponse): AdmissionReviewOut {
  return { apiVersion: ADMISSION_API_VERSION, kind: 'AdmissionReview', response };
}

export function allowResponse(uid: string, opts: { warnings?: readonly string[]; patch?: readonly unknown[] } = {}): AdmissionReviewOut {
  const warnings = boundedWarnings(opts.warnings);
  const patch = opts.patch && opts.patch.length > 0 ? Buffer.from(JSON.stringify(opts.patch)).toString('base64') : undefined;
  return review({ uid, allowed: true, ...(warnings ? { warnings } : {}), ...(patch ? { patchType: 'JSONPatch' as const, patch } : {}) });
}

/**
 * A denial: HTTP-like status code (403 policy, 400 bad object, 504 deadline, 503 registry down,
 * 500 a fault of ours),
 * the stable code first in the message so that users and scripts see it in `kubectl` output.
 */
export function denyResponse(uid: string, code: string, message: string, opts: { httpCode?: number; warnings?: readonly string[] } = {}): AdmissionReviewOut {
  const warnings = boundedWarnings(opts.warnings);
  const httpCode = opts.httpCode ?? 403;
  const reason = httpCode === 400 ? 'BadRequest' : httpCode === 504 ? 'Timeout' : httpCode === 503 ? 'ServiceUnavailable' : httpCode === 500 ? 'InternalError' : 'Forbidden';
  return review({ uid, allowed: false, status: { code: httpCode, reason, message: clip(`[${code}] ${message}`, MAX_MESSAGE) }, ...(warnings ? { warnings } : {}) });
}

/**
 * An audit-mode answer (`--audit-environment`): a denial becomes an allow that says, as a warning
 * kubectl prints, what would have been denied — as Kyverno's `Audit` and policy-controller's
 * `warn` do, so a team sees what enforcing would break before it does. A malformed request (400)
 * stays denied: it is no verdict to audit. Returns the denial's message when it converted one.
 */
export function auditAnswer(out: AdmissionReviewOut): { out: AdmissionReviewOut; wouldDeny?: string } {
  const r = out.response;
  if (r.allowed || r.status?.code === 400) return { out };
  const wouldDeny = r.status?.message ?? '[POLICY_VIOLATION] denied';
  return { out: allowResponse(r.uid, { warnings: [`audit: would be denied: ${wouldDeny}`, ...(r.warnings ?? [])] }), wouldDeny };
}
