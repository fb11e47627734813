#!/bin/sh
# Rebuilds assets/vendor/ from npm: uPlot's own built, minified files (no
# bundler, no transpiling), its licence and the exact version. Run from any
# directory; needs npm and tar. Bump VERSION, run, check the dashboard
# (go test -run TestDashboard ./cmd/tokenmeter/ with TOKENMETER_TEST_CHROMIUM
# set), commit assets/vendor/.
set -eu
VERSION=1.6.32
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$VERSION" >/dev/null && tar xzf "uplot-$VERSION.tgz")
mkdir -p vendor
cp "$tmp/package/dist/uPlot.iife.min.js" vendor/uPlot.iife.min.js
cp "$tmp/package/dist/uPlot.min.css" vendor/uPlot.min.css
cp "$tmp/package/LICENSE" vendor/uPlot.LICENSE
printf 'uplot %s (https://www.npmjs.com/package/uplot, MIT)\nsha256 of the npm tarball: %s\n' "$VERSION" \
  "$(sha256sum "$tmp/uplot-$VERSION.tgz" | cut -d' ' -f1)" > vendor/VERSION
