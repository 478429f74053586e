#!/usr/bin/env node
// The GitLab CI/CD components' entry (templates/*.yml): `ct-gitlab build|verify|deploy|promote|policy-check`.
// Installed with the cerro-torre npm package next to `ct`, so a job needs only a Node.js image.
const command = process.argv[2];
if (command === 'policy-check') await import('../build/actions/policy-check/gitlab-main.js');
else await import('../build/actions/build/gitlab-main.js');
