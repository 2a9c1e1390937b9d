#!/usr/bin/env bash
# Prints what a patient's phone downloads: the release bundle (raw, gzip, brotli) and the
# server-rendered landing page as sent over the wire. Needs a release build
# (scripts/build-site.sh); starts its own server on a free port with a throw-away database.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x target/release/uketsuke-server ] || { echo "build first: scripts/build-site.sh" >&2; exit 1; }

row() { printf '%-28s %10s %10s %10s\n' "$@"; }
row "file" "raw" "gzip" "brotli"
for file in target/site/pkg/uketsuke.wasm target/site/pkg/uketsuke.js target/site/pkg/uketsuke.css; do
  row "$(basename "$file")" "$(stat -c %s "$file")" \
    "$(gzip -9 -c "$file" | wc -c)" "$(brotli -q 11 -c "$file" | wc -c)"
done

work=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
UKETSUKE_LISTEN=127.0.0.1:0 UKETSUKE_MODE=demo UKETSUKE_LOG=warn \
  UKETSUKE_DATABASE_URL="sqlite://$work/sizes.db" target/release/uketsuke-server > "$work/out" &
server=$!
for _ in $(seq 100); do grep -q "Open the demo" "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^Open the demo landing page: //p' "$work/out")
[ -n "$url" ] || { echo "server did not start" >&2; cat "$work/out" >&2; exit 1; }
html_raw=$(curl -s "$url" | wc -c)
html_gz=$(curl -s -H 'Accept-Encoding: gzip' "$url" | wc -c)
html_br=$(curl -s -H 'Accept-Encoding: br' "$url" | wc -c)
row "landing page HTML (served)" "$html_raw" "$html_gz" "$html_br"
