/** What `ct quickstart` prints once hello runs: where to look, and four things to try next. */
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
  /** hello's bundle as deployed: reference pinned by digest, and the .ctp's digest. */
  reference: string;
  bundleDigest: string;
}

export function guide(g: GuideInput): string {
  const { l, url } = g;
  const auth = '-H "authorization: Bearer $CT_KEY"';
  return [
    '',
    // The curl lines below use $CT_KEY: copied before it was set (it was set only under "What to
    // try next") they answered 401 with nothing saying where the key is. The command has a line of
    // its own, nothing after it (a line copied whole must run), and the path is one single-quoted
    // argument, not code: a --dir may hold ', $, ` or spaces.
    'Where to look (the curl lines need the admin key in CT_KEY; set it with the next line)',
    `    export CT_KEY=$(node -p 'require(process.argv[1]).adminKey' ${shellQuote(g.adminKeyFile)})`,
    `  dashboard        ${g.dashboardLink}`,
    `                   (open it and press Sign in: signs you in once, within 10 minutes; a new link: curl -X POST ${auth} ${url}/api/v1/login-links)`,
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
    `         -d "{\\"files\\":[{\\"path\\":\\"production.policy.yaml\\",\\"text\\":$(sed 's/^logQuorum: 2$/logQuorum: 3/' policies/production.policy.yaml | node -p 'JSON.stringify(require("fs").readFileSync(0,"utf8"))')}]}"`,
    '     → hello is now-denied (its bundle is in two logs, by two operators, not three).',
    '  4. Apply it: edit the policy the same way, reload it, deploy hello again; the last line puts the policy back.',
    `       sed -i 's/^logQuorum: 2$/logQuorum: 3/' policies/production.policy.yaml && curl -X POST ${auth} $CT_URL/api/v1/policies/reload`,
    `       curl -X POST ${auth} -H 'content-type: application/json' $CT_URL/api/v1/deployments -d '{"environment":"production","app":"hello","bundle":"${g.reference}","bundleDigest":"${g.bundleDigest}","hosts":{"env":"production"}}'`,
    `       sleep 3; curl ${auth} $CT_URL/api/v1/deployments`,
    `       sed -i 's/^logQuorum: 3$/logQuorum: 2/' policies/production.policy.yaml && curl -X POST ${auth} $CT_URL/api/v1/policies/reload`,
    '     → the newest deployment is denied with INSUFFICIENT_LOG_COVERAGE (the policy needs 3 logs); hello keeps running.',
    '',
    `Ctrl-C stops all of it (registry, server, host and its containers, logs); ct quickstart --dir ${l.dir} reuses it.`,
  ].join('\n');
}

/** One POSIX shell word that is exactly `s`: single quotes keep everything but ', written '\''. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, "'\\''")}'`;
}
