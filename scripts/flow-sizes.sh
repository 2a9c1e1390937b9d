#!/usr/bin/env bash
# Prints the brotli bytes a patient's phone downloads per screen of the patient flow (landing →
# consent → review) with the server-rendered HTML as sent over the wire, plus the shared bundle
# (wasm, js, css as precompressed .br files in target/site/pkg/) fetched once with the first
# screen. Needs a release build (scripts/build-site.sh); starts its own server on a free loopback
# port with a throw-away database, as the e2e suite does, and walks the plain-form flow with curl.
# Usage: scripts/flow-sizes.sh [demo-link-name]   (default: separate_route)
set -euo pipefail
cd "$(dirname "$0")/.."

demo=${1:-separate_route}

source scripts/lib/demo-server.sh
start_demo_server "$demo"
jar=$work/cookies

# POSTs a form with the session cookie; prints the path it redirects to.
post() {
  local path=$1 data=$2 target
  target=$(curl -s -b "$jar" -c "$jar" -X POST -H "Origin: $base" \
    -H 'Content-Type: application/x-www-form-urlencoded' --data "$data" \
    -o /dev/null -w '%{redirect_url}' "$base$path")
  printf '%s\n' "${target#"$base"}"
}

# Fetches a screen as a phone would (brotli); prints "brotli-bytes raw-bytes".
fetch() {
  local path=$1 br code enc raw
  read -r br code < <(curl -s --compressed -H 'accept-encoding: br' -b "$jar" -c "$jar" \
    -D "$work/headers" -o /dev/null -w '%{size_download} %{http_code}\n' "$base$path")
  [ "$code" = 200 ] || { echo "GET $path answered $code" >&2; exit 1; }
  enc=$(tr -d '\r' < "$work/headers" | sed -n 's/^[Cc]ontent-[Ee]ncoding: *//p')
  [ "$enc" = br ] || echo "warning: GET $path was sent with content-encoding '${enc:-none}'" >&2
  raw=$(curl -s -b "$jar" "$base$path" | wc -c)
  echo "$br $raw"
}

expect() { # path wanted
  [ "$1" = "$2" ] || { echo "expected a redirect to $2, got '$1'" >&2; exit 1; }
}

read -r landing_br landing_raw < <(fetch "/r/$link")
next=$(post "/r/$link/start" "")
expect "$next" "/r/$link/consent"
grep -q 'uk_session' "$jar" || { echo "no uk_session cookie was set" >&2; exit 1; }
read -r consent_br consent_raw < <(fetch "$next")
next=$(post "/r/$link/consent" "clinical_medication=yes&checkups=no")
expect "$next" "/r/$link/review"
read -r review_br review_raw < <(fetch "$next")

pkg=target/site/pkg
wasm=$(stat -c %s "$pkg/uketsuke.wasm.br")
js=$(stat -c %s "$pkg/uketsuke.js.br")
css=$(stat -c %s "$pkg/uketsuke.css.br")
shared=$((wasm + js + css))

row() { printf '%-26s %10s %12s %14s\n' "$@"; }
echo "patient flow of demo '$demo' (bytes; brotli as sent, raw = uncompressed HTML)"
row "screen" "HTML raw" "HTML brotli" "with bundle"
row "landing /r/<link>" "$landing_raw" "$landing_br" "$((landing_br + shared))"
row "consent /r/<link>/consent" "$consent_raw" "$consent_br" "$((consent_br + shared))"
row "review /r/<link>/review" "$review_raw" "$review_br" "$((review_br + shared))"
echo
row "shared bundle (.br)" "" "brotli" ""
row "uketsuke.wasm.br" "" "$wasm" ""
row "uketsuke.js.br" "" "$js" ""
row "uketsuke.css.br" "" "$css" ""
row "bundle total" "" "$shared" ""
echo
total=$((landing_br + consent_br + review_br + shared))
echo "whole flow, bundle fetched once and cached: $total bytes brotli" \
  "(HTML $((landing_br + consent_br + review_br)) + bundle $shared)"
