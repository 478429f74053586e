import YAML from 'yaml';
import { CtError } from '../../src/core/errors.js';
import { parsePublishedPorts, type PublishedPort } from '../../src/protocol/ports.js';
import { parsePromotionRules, type PromotionRule } from '../promotion/rules.js';
import { MAX_DESIRED_STATE_BYTES } from '../../src/promote/desired-edit.js';
import { NAME } from '../../src/core/name.js';

/** One desired-state file: the size `ct promote` edits, so a file it refuses is never applied either. */
export { MAX_DESIRED_STATE_BYTES };

/**
 * All desired-state files of one commit together. Parsing is synchronous (a hostile megabyte of
 * YAML can hold the event loop for about a second), so this bounds a reconcile's parse time; a
 * 100,000-file state (the listing limit) still fits at ~300 bytes a file.
 */
export const MAX_DESIRED_STATE_TOTAL_BYTES = 32 * MAX_DESIRED_STATE_BYTES;

/**
 * Desired state: YAML files in a git repository, environments → apps → bundle reference pinned
 * by digest → host selector. One file may hold several environments; a name may appear once.
 *
 *   environments:
 *     production:
 *       apps:
 *         hello:
 *           bundle: registry.example/acme/hello@sha256:…
 *           hosts: { env: production }
 *           ports: [{ host: 18080, container: 8080, address: 127.0.0.1 }]   # optional, bridge network
 *           suspended: true      # optional: stopped on its hosts (not removed) until set false or dropped
 */
export interface DesiredApp {
  environment: string;
  app: string;
  bundle: string;
  digest: string;
  /** Optional pin of the .ctp itself (several signed bundles may refer to one image). */
  bundleDigest?: string;
  hosts: Record<string, string>;
  /** Host ports published to the app's container ports (bridge network). */
  ports?: PublishedPort[];
  /** `suspended: true`: the hosts keep the app stopped (not removed) and the restart policy leaves it alone. */
  suspended?: boolean;
  /** The file that declares it (a promotion edits that file). */
  file?: string;
}

const REF = /^[a-z0-9.-]+(?::\d{1,5})?\/[a-z0-9._/-]+(?::[\w.-]{1,128})?@(sha256:[0-9a-f]{64})$/;
const TOP_FIELDS = ['environments', 'promotion'] as const;
const ENVIRONMENT_FIELDS = ['apps'] as const;
const APP_FIELDS = ['bundle', 'bundleDigest', 'hosts', 'ports', 'suspended'] as const;

export function parseDesiredState(files: { name: string; text: string }[]): DesiredApp[] {
  return parseDesiredFiles(files).apps;
}

/** Apps and `promotion:` rules (server/promotion/rules.ts) of desired-state files. */
export function parseDesiredFiles(files: { name: string; text: string }[]): { apps: DesiredApp[]; promotions: PromotionRule[] } {
  const out: DesiredApp[] = [];
  const promotions: PromotionRule[] = [];
  const seen = new Set<string>();
  for (const f of files) {
    // Checked again here for callers that did not check sizes before reading (the reconciler does).
    const bytes = Buffer.byteLength(f.text);
    if (bytes > MAX_DESIRED_STATE_BYTES) throw fileTooLarge(f.name, bytes);
    const doc = YAML.parseDocument(f.text, { uniqueKeys: true });
    if (doc.errors.length) throw yamlError(f.name, doc.errors[0]);
    const v = doc.toJS({ maxAliasCount: 10 }) as { environments?: Record<string, { apps?: Record<string, { bundle?: unknown; hosts?: unknown }> }>; promotion?: unknown } | null;
    const bad = (where: string, what: string) => new CtError('MANIFEST_INVALID', `${f.name}: ${where}: ${what}`, { file: f.name, where });
    if (!v || typeof v !== 'object' || typeof v.environments !== 'object' || v.environments === null) throw bad('environments', 'missing');
    // A misspelt key (`bundle_digest`, `suspend`, `promotions`) is refused, not ignored: ignored, the
    // pin, the stop or the rule it meant would silently not apply.
    const unknown = (where: string, o: object, known: readonly string[]) => {
      const k = Object.keys(o).find((x) => !known.includes(x));
      if (k !== undefined) throw bad(where ? `${where}.${k.slice(0, 64)}` : k.slice(0, 64), `unknown field (${known.join(', ')})`);
    };
    unknown('', v, TOP_FIELDS);
    promotions.push(...parsePromotionRules(v.promotion, f.name));
    for (const [env, spec] of Object.entries(v.environments)) {
      if (!NAME.test(env)) throw bad(`environments.${env}`, 'invalid environment name');
      if (!spec?.apps || typeof spec.apps !== 'object') throw bad(`environments.${env}.apps`, 'missing');
      unknown(`environments.${env}`, spec, ENVIRONMENT_FIELDS);
      for (const [app, a] of Object.entries(spec.apps) as [string, { bundle?: unknown; hosts?: unknown; bundleDigest?: unknown; ports?: unknown; suspended?: unknown }][]) {
        const where = `environments.${env}.apps.${app}`;
        if (!NAME.test(app)) throw bad(where, 'invalid app name');
        if (typeof a?.bundle !== 'string') throw bad(`${where}.bundle`, 'missing');
        unknown(where, a, APP_FIELDS);
        const m = REF.exec(a.bundle);
        if (!m) throw bad(`${where}.bundle`, 'must be a registry reference pinned by digest (…@sha256:<64 hex>)');
        const hosts = a.hosts ?? {};
        if (typeof hosts !== 'object' || Array.isArray(hosts) || Object.values(hosts).some((x) => typeof x !== 'string')) throw bad(`${where}.hosts`, 'must map labels to strings');
        const key = `${env}/${app}`;
        if (seen.has(key)) throw bad(where, 'declared twice');
        seen.add(key);
        if (a.bundleDigest !== undefined && (typeof a.bundleDigest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(a.bundleDigest))) throw bad(`${where}.bundleDigest`, 'must be sha256:<64 hex>');
        const ports = parsePublishedPorts(a.ports);
        if ('problem' in ports) throw bad(`${where}.ports`, ports.problem);
        if (a.suspended !== undefined && typeof a.suspended !== 'boolean') throw bad(`${where}.suspended`, 'must be true or false');
        out.push({
          environment: env, app, bundle: a.bundle, digest: m[1], ...(a.bundleDigest ? { bundleDigest: a.bundleDigest as string } : {}), hosts: hosts as Record<string, string>,
          ...(ports.ports.length ? { ports: ports.ports } : {}), ...(a.suspended ? { suspended: true } : {}), file: f.name,
        });
      }
    }
  }
  return { apps: out.sort((a, b) => `${a.environment}/${a.app}`.localeCompare(`${b.environment}/${b.app}`)), promotions };
}

/**
 * A file that is not valid YAML, said as the file:line:column editors jump to, on one line (the
 * parser's own message ends in a multi-line excerpt of the file): commit statuses and logs show it.
 */
function yamlError(file: string, e: YAML.YAMLError): CtError {
  const at = e.linePos?.[0];
  const what = e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
  return new CtError('MANIFEST_INVALID', `${file}${at ? `:${at.line}:${at.col}` : ''}: not valid YAML: ${what}`, { file, ...(at ? { line: at.line, column: at.col } : {}) });
}

/** A desired-state file over MAX_DESIRED_STATE_BYTES, refused before it is parsed. */
export function fileTooLarge(file: string, bytes: number): CtError {
  return new CtError('DESIRED_STATE_TOO_LARGE', `${file}: ${bytes} bytes, larger than the ${MAX_DESIRED_STATE_BYTES} bytes a desired-state file may hold`, { file, bytes, limit: 'file', max: MAX_DESIRED_STATE_BYTES });
}

/** The files of one commit over MAX_DESIRED_STATE_TOTAL_BYTES together (`bytes`: counted so far), refused before any is parsed. */
export function stateTooLarge(bytes: number, files: number): CtError {
  return new CtError('DESIRED_STATE_TOO_LARGE', `the desired-state files hold more than ${MAX_DESIRED_STATE_TOTAL_BYTES} bytes together (${bytes} counted over ${files} files; a file listed under several names counts once per name)`, { bytes, files, limit: 'total', max: MAX_DESIRED_STATE_TOTAL_BYTES });
}
