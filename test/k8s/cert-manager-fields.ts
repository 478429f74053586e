/**
 * Unknown-field detection for cert-manager objects. `@kubernetes-models/cert-manager` validates
 * types, enums and required fields but accepts any extra field (its generated validators allow
 * additional properties), where the API server prunes it and `kubectl --validate=strict` refuses
 * it: a misspelt `dnsName` would issue a certificate without the name. The package's type
 * declarations list every field the CRD has; the TypeScript checker reads them, so nothing is
 * restated here. Hand-written because no library walks a value against a declared type.
 */
import { join } from 'node:path';
import ts from 'typescript';
import { repoRoot } from '../support/cli.js';

const DIR = join(repoRoot, 'node_modules/@kubernetes-models/cert-manager/cert-manager.io/v1');
const KINDS = ['Certificate', 'Issuer', 'ClusterIssuer'];
let checker: ts.TypeChecker | undefined;
let roots: Map<string, ts.Type> | undefined;

/** One program for all kinds: building one costs seconds. */
function rootType(kind: string): ts.Type | undefined {
  if (!roots) {
    const files = KINDS.map((k) => join(DIR, `${k}.d.ts`));
    const program = ts.createProgram(files, { noEmit: true, skipLibCheck: true, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler, strict: true });
    checker = program.getTypeChecker();
    roots = new Map();
    for (const [i, k] of KINDS.entries()) {
      program.getSourceFile(files[i])?.forEachChild((n) => {
        if (ts.isInterfaceDeclaration(n) && n.name.text === `I${k}`) roots!.set(k, checker!.getTypeAtLocation(n));
      });
    }
  }
  return roots.get(kind);
}

function walk(value: unknown, type: ts.Type, path: string, out: string[]): void {
  if (value === null || typeof value !== 'object' || !checker) return;
  const t = checker.getNonNullableType(type);
  if (t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
  if (Array.isArray(value)) {
    const elem = checker.isArrayType(t) ? checker.getTypeArguments(t as ts.TypeReference)[0] : undefined;
    if (elem) value.forEach((v, i) => walk(v, elem, `${path}[${i}]`, out));
    return;
  }
  const props = checker.getPropertiesOfType(t);
  const index = checker.getIndexInfoOfType(t, ts.IndexKind.String);
  if (props.length === 0 && !index) return; // an open object (no fields declared)
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const prop = checker.getPropertyOfType(t, k);
    if (prop?.valueDeclaration) walk(v, checker.getTypeOfSymbolAtLocation(prop, prop.valueDeclaration), `${path}.${k}`, out);
    else if (index) walk(v, index.type, `${path}.${k}`, out);
    else out.push(`${path}.${k}: unknown field (not in cert-manager's ${kindOf(t)})`);
  }
}

const kindOf = (t: ts.Type) => (t.aliasSymbol ?? t.getSymbol())?.getName() ?? 'type';

export function unknownCertManagerFields(obj: Record<string, unknown>, kind: string, where: string): string[] {
  const type = rootType(kind);
  if (!type) return [`${where}: no type declaration for cert-manager kind ${kind}`];
  const out: string[] = [];
  walk(obj, type, where, out);
  return out;
}
