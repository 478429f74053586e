/**
 * `ct k8s render BUNDLE|REFERENCE`: Security Profiles Operator resources and a Deployment for a
 * bundle, printed as multi-document YAML (docs/kubernetes.md). The bundle is verified first
 * (integrity: signatures, digests, coverage of security/ files) so only signed profiles are
 * rendered; a registry reference is fetched through the guarded client like `ct fetch`.
 */
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { action, processIo } from '../io.js';
import { CtError, asIoError } from '../../core/errors.js';
import { exitCodeFor } from '../../core/codes.js';
import { addRegistryOptions, clientOptionsFrom, type RegistryCliOptions } from '../../oci/cli-options.js';
import { fetchCtp } from '../../oci/fetch.js';
import { parseReference } from '../../oci/reference.js';
import { openCtpToVerify } from '../../bundle/read.js';
import { loadTrustStore } from '../../trust/store.js';
import { trustMaterial } from '../../verify/trust-material.js';
import { loadTrustedRootFile } from '../../verify/sigstore/trusted-root.js';
import { verifyCtpArchive } from '../../verify/ctp/verify-ctp.js';
import { defaultVerifiers } from '../../verify/ctp/verifiers.js';
import { addIdentityOptions, identityFromFlags } from '../verify-options.js';
import { bundleFactsFromArchive } from '../../policy/bundle-facts.js';
import { renderK8s } from '../../k8s/render.js';
import { DNS_LABEL_RE } from '../../k8s/dns-label.js';

interface RenderOptions extends RegistryCliOptions {
  trustStore?: string;
  trustedRoot?: string;
  certificateIdentity?: string;
  certificateIdentityRegexp?: string;
  certificateOidcIssuer?: string;
  repository?: string;
  app?: string;
  namespace?: string;
  replicas?: string;
  allowPartialApparmor?: boolean;
  apparmor: boolean;
  output?: string;
}

export function register(program: Command): void {
  const k8s = program.command('k8s').description('Kubernetes: manifests and profiles for verified bundles');
  const render = k8s
    .command('render')
    .description('print SPO SeccompProfile/AppArmorProfile and a digest-pinned Deployment for a verified bundle')
    .argument('<bundle>', '.ctp file, or registry reference host/repo[:tag|@sha256:…]')
    .option('--trust-store <file>', 'VCS trust store JSON the bundle must verify against (required)')
    .option('--trusted-root <file>', 'Sigstore TrustedRoot JSON for keyless bundles')
    .option('--repository <host/repo>', 'where the cluster pulls the image from (default: the reference\'s repository; required for a file)')
    .option('--app <name>', 'Deployment name (default: the bundle name)')
    .option('--namespace <ns>', 'namespace of the Deployment')
    .option('--replicas <n>', 'replicas (default 1)')
    .option('--allow-partial-apparmor', 'render an AppArmor profile even when SPO cannot express all of its rules (they are listed)')
    .option('--no-apparmor', 'the nodes do not enforce AppArmor (Bottlerocket, Amazon Linux, RHEL): render no AppArmor profile (the kubelet refuses a pod asking for one there), as the admission webhooks without --nodes-apparmor')
    .option('-o, --output <file>', 'write the YAML here instead of standard output');
  addRegistryOptions(addIdentityOptions(render)).action(
    action(async (bundle: string, o: RenderOptions) => {
      if (!o.trustStore) throw new CtError('USAGE', 'ct k8s render needs --trust-store: only verified profiles are rendered', {});
      const replicas = o.replicas === undefined ? 1 : Number(o.replicas);
      if (!Number.isInteger(replicas) || replicas < 0 || replicas > 10_000) throw new CtError('USAGE', `--replicas ${o.replicas}: not 0-10000`, {});
      // Checked here, not by kubectl apply after the bundle was fetched and verified.
      if (o.namespace !== undefined && !DNS_LABEL_RE.test(o.namespace)) throw new CtError('USAGE', `--namespace ${JSON.stringify(o.namespace.slice(0, 80))}: not a namespace name (1-63 lower case letters, digits and -, starting and ending with a letter or digit)`, {});
      const identity = await identityFromFlags(o);
      const store = await loadTrustStore(o.trustStore);
      const root = o.trustedRoot ? await loadTrustedRootFile(o.trustedRoot) : undefined;
      const dir = await mkdtemp(join(tmpdir(), 'ct-k8s-'));
      try {
        let path = bundle;
        let repository = o.repository;
        if (!existsSync(bundle)) {
          const ref = parseReference(bundle);
          const fetched = await fetchCtp(bundle, join(dir, 'bundle.ctp'), await clientOptionsFrom(o));
          path = fetched.path;
          repository ??= `${ref.registry}/${ref.repository}`;
        }
        if (!repository) throw new CtError('USAGE', 'a .ctp file does not say where the cluster pulls the image from: give --repository host/repo', {});
        parseReference(`${repository}@sha256:${'0'.repeat(64)}`); // a valid repository, or REFERENCE_INVALID
        const archive = await openCtpToVerify(path);
        const report = await verifyCtpArchive(archive, {
          trust: trustMaterial(store, root),
          // Integrity is what rendering needs (signed profiles); requirements are the policy's, judged at admission.
          mode: 'audit',
          verifiers: defaultVerifiers({ ...(identity ? { policy: identity } : {}), ...(root ? { trustedRoot: root } : {}) }),
        });
        if (report.decision === 'REJECT') {
          processIo.err(`REJECTED: ${bundle} [${report.code}] ${report.message ?? ''}`);
          return exitCodeFor(report.code ?? 'MALFORMED_BUNDLE');
        }
        const out = renderK8s({
          facts: bundleFactsFromArchive(archive, path),
          imageDigest: archive.manifest.image_digest,
          bundleDigest: archive.bundleDigest,
          repository,
          ...(o.app ? { app: o.app } : {}),
          ...(o.namespace ? { namespace: o.namespace } : {}),
          replicas,
          allowPartialAppArmor: Boolean(o.allowPartialApparmor),
          nodesAppArmor: o.apparmor,
        });
        for (const w of out.warnings) processIo.err(`warning: ${w}`);
        const text = out.objects.map((d) => YAML.stringify(d, { lineWidth: 0 })).join('---\n');
        if (o.output) await writeFile(o.output, text).catch((e) => Promise.reject(asIoError(e, o.output!)));
        else processIo.out(text);
        return 0;
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }),
  );
}
