/** What `ct quickstart` prints once hello runs: where to look, and three things to try next. */
import type { Layout } from './setup.js';

export interface GuideInput {
  l: Layout;
  url: string;
  /** One-time sign-in link to the dashboard. */
  dashboardLink: string;
  registryHost: string;
  hostId: string;
  container: string;
  deploymentId: string;
  adminKeyFile: string;
}

export function guide(g: GuideInput): string {
  const { l, url } = g;
  const auth = '-H "authorization: Bearer $CT_KEY"';
  return [
    '',
    'Where to look',
    `  dashboard        ${g.dashboardLink}`,
    `                   (signs you in once, within 10 minutes; a new link: curl -X POST ${auth} ${url}/api/v1/login-links)`,
    `  API              ${url}/api/v1   (OpenAPI: ${url}/openapi.json; admin key: "adminKey" in ${g.adminKeyFile})`,
    `  deployments      curl ${auth} ${url}/api/v1/deployments/${g.deploymentId}`,
    `  hello's log      curl ${auth} '${url}/api/v1/hosts/${g.hostId}/logs?container=${g.container}'`,
    `  runc             runc --root ${l.host}/runc list`,
    `  desired state    ${l.desiredWork}/deploy/production.yaml (a clone of ${l.desiredBare}: edit, commit, git push origin HEAD:main)`,
    `  policy           ${l.policies}/production.policy.yaml     trust store ${l.trustStore}     signing key ${l.key}`,
    `  process logs     ${l.logs}/{registry,server,host}.log`,
    '',
    `What to try next (another terminal, in ${l.dir}, with ct on the PATH):`,
    `  export CT_URL=${url} CT_KEY=$(node -p "require('./quickstart.json').adminKey")`,
    '  1. Tamper: change one byte of the signed bundle, push it and point the desired state at it.',
    '       cp bundles/hello.signed.ctp bundles/tampered.ctp',
    "       off=$(grep -abo 'hello from a .ctp' bundles/tampered.ctp | head -1 | cut -d: -f1)",
    "       printf j | dd of=bundles/tampered.ctp bs=1 seek=$off conv=notrunc status=none",
    '       ct verify bundles/tampered.ctp --trust-store trust.json --log-quorum 2    # exit 1: DIGEST_MISMATCH',
    `       BD=$(ct push bundles/tampered.ctp ${g.registryHost}/quickstart/hello:tampered --plain-http --allow-address 127.0.0.1 --json | node -p 'JSON.parse(require("fs").readFileSync(0)).bundleDigest')`,
    '       sed -i "s/bundleDigest: .*/bundleDigest: $BD/" desired/deploy/production.yaml',
    '       git -C desired commit -qam "deploy a tampered bundle" && git -C desired push -q origin HEAD:main',
    `       curl -X POST ${auth} $CT_URL/api/v1/sync; sleep 3; curl ${auth} $CT_URL/api/v1/deployments`,
    '     → the newest deployment is denied with DIGEST_MISMATCH; nothing of it reaches runc, hello keeps running.',
    '  2. Roll back: revert that commit (the server only moves forward: a rollback is a new commit).',
    `       git -C desired revert --no-edit HEAD && git -C desired push -q origin HEAD:main && curl -X POST ${auth} $CT_URL/api/v1/sync`,
    '     → a new deployment of the reverted commit succeeds: hello runs the signed bundle again.',
    `     (With two successful versions, POST $CT_URL/api/v1/deployments/<id>/rollback redeploys the one before.)`,
    '  3. Change the policy: ask which live deployments a stricter policy would deny.',
    `       curl -X POST ${auth} -H 'content-type: application/json' $CT_URL/api/v1/policies/impact \\`,
    `         -d "{\\"files\\":[{\\"path\\":\\"production.policy.yaml\\",\\"text\\":$(sed 's/logQuorum: 2/logQuorum: 3/' policies/production.policy.yaml | node -p 'JSON.stringify(require("fs").readFileSync(0,"utf8"))')}]}"`,
    '     → hello is now-denied (its bundle is in two logs, by two operators, not three).',
    `     To apply it: edit policies/production.policy.yaml the same way, curl -X POST ${auth} $CT_URL/api/v1/policies/reload,`,
    '     and deploy again (step 2): the deploy is denied, saying why.',
    '',
    `Ctrl-C stops all of it (registry, server, host and its containers, logs); ct quickstart --dir ${l.dir} reuses it.`,
  ].join('\n');
}
