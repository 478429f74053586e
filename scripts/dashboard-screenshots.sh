#!/usr/bin/env bash
# Regenerates the screenshots of docs/dashboard.md (docs/img/dashboard-*.png) from the browser
# acceptance test: a real sign-in, real deploys, a rollback and a denial, so the pictures show
# what the dashboard really shows. Needs what the tests need (README set-up line, root for runc).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/img
node scripts/build.mjs
CT_DASHBOARD_SCREENSHOTS="$PWD/docs/img" node --experimental-vm-modules node_modules/jest/bin/jest.js test/server-ui/dashboard.test.ts
ls -l docs/img/dashboard-*.png
