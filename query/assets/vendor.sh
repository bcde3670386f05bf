#!/bin/sh
# Fetches the console's vendored files again (query/assets/vendor/) from the npm registry
# with `npm pack`: Preact and its hooks, htm, uPlot, as their packages ship them. Neither
# cargo nor CI runs this; the files it writes are committed.
set -eu
PREACT=10.29.8
HTM=3.1.1
UPLOT=1.6.32
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
npm pack --silent "preact@$PREACT" "htm@$HTM" "uplot@$UPLOT" >/dev/null
for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done
out="$here/vendor"
mkdir -p "$out"
cp "preact-$PREACT/package/dist/preact.module.js" "$out/"
cp "preact-$PREACT/package/hooks/dist/hooks.module.js" "$out/"
cp "htm-$HTM/package/dist/htm.module.js" "$out/"
cp "uplot-$UPLOT/package/dist/uPlot.iife.min.js" "uplot-$UPLOT/package/dist/uPlot.min.css" "$out/"
for f in "$out"/*; do echo "$(basename "$f"): $(wc -c <"$f") bytes, $(gzip -9c "$f" | wc -c) gzip"; done
