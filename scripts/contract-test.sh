#!/usr/bin/env bash
# Contract test of the institution API: runs Schemathesis (PyPI, installed by
# `scripts/setup.sh test` into target/schemathesis) against a real server process, so that
# server/openapi.yaml and the server cannot drift apart. The server runs in demo mode on a
# throw-away SQLite database; the token comes from the command line an administrator uses
# (`uketsuke-server api-token create`), with every scope. Schemathesis reads the document the
# server serves (/api/v1/openapi.yaml) and fails the run on any answer the document does not
# describe: a 5xx, a status, content type, header or body it does not list.
#
# Usage: scripts/contract-test.sh [extra Schemathesis options]
#   CONTRACT_SERVER_BIN    the server binary (default: target/debug/uketsuke-server, built first)
#   CONTRACT_SCHEMA        a document file to test instead of the one the server serves (to try
#                          an edit of server/openapi.yaml without rebuilding)
#   CONTRACT_MAX_EXAMPLES  test cases per operation and phase (default 100; the run takes
#                          well under a minute)
#   CONTRACT_SEED          Schemathesis' seed (default fixed, so that CI runs are repeatable)
set -euo pipefail
cd "$(dirname "$0")/.."

root=$PWD
st=target/schemathesis/bin/st
if [ ! -x "$st" ]; then
  echo "contract-test: Schemathesis is missing; run scripts/setup.sh test" >&2
  exit 2
fi
bin=${CONTRACT_SERVER_BIN:-target/debug/uketsuke-server}
if [ -z "${CONTRACT_SERVER_BIN:-}" ]; then
  cargo build -q -p uketsuke-server --bin uketsuke-server
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/site/pkg/all"
# The API serves no pages; the server only checks that a built site is there (its SITE_FILES).
touch "$work/site/pkg/uketsuke.js" "$work/site/pkg/uketsuke.wasm" "$work/site/pkg/uketsuke.css" \
  "$work/site/pkg/all/uketsuke.js" "$work/site/pkg/all/uketsuke.wasm"
# The server's configuration is this script's alone: no uketsuke.toml, and no UKETSUKE_*
# variable of the caller (scripts/test.sh exports UKETSUKE_TEST_POSTGRES_URL, which the server
# would refuse as an unknown setting).
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep '^UKETSUKE_' || true)
echo "# contract test: everything comes from the environment" >"$work/uketsuke.toml"
export UKETSUKE_CONFIG="$work/uketsuke.toml"
export UKETSUKE_MODE=demo
export UKETSUKE_DATABASE_URL="sqlite://$work/db/uketsuke.db"
export UKETSUKE_AUDIT_KEY_FILE="$work/audit.key"
export UKETSUKE_SITE_ROOT="$work/site"
export UKETSUKE_LISTEN=127.0.0.1:0
export UKETSUKE_LOG=warn
# Schemathesis sends many requests from one address: a budget it cannot use up (the 429 answer
# is checked by the Rust tests).
export UKETSUKE_CONSOLE_REQUEST_BURST=1000000
export UKETSUKE_CONSOLE_REQUESTS_PER_MINUTE=1000000

"$bin" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
base=
for _ in $(seq 1 300); do
  base=$(sed -n 's/^Uketsuke is running at \(http[^ ]*\).*/\1/p' "$work/server.out" | head -n 1)
  [ -n "$base" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "contract-test: the server did not start:" >&2
    cat "$work/server.err" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$base" ]; then
  echo "contract-test: the server did not announce its address" >&2
  exit 1
fi

# The demo institution (demo mode makes it at first start) and a token with every scope, as an
# administrator makes one.
code=$(python3 -c 'import sqlite3, sys
row = sqlite3.connect(sys.argv[1]).execute("SELECT code FROM institutions WHERE is_demo = 1").fetchone()
print(row[0] if row else "")' "$work/db/uketsuke.db")
token=$("$bin" api-token create --institution "$code" --label contract-test \
  --scopes links:appointment,links:standing,links:revoke,home_visits:write 2>"$work/cli.err" |
  grep -o 'ukt_[0-9a-z]*' | head -n 1) || true
if [ -z "$token" ]; then
  echo "contract-test: api-token create gave no token:" >&2
  cat "$work/cli.err" >&2
  exit 1
fi

echo "contract-test: Schemathesis $("$st" --version | sed 's/.*version //') against $base"
# Run from the throw-away folder: Schemathesis keeps its cache (.schemathesis/) where it runs.
status=0
schema="$base/api/v1/openapi.yaml"
if [ -n "${CONTRACT_SCHEMA:-}" ]; then schema=$(realpath "$CONTRACT_SCHEMA"); fi
(cd "$work" && "$root/$st" run "$schema" \
  --url "$base" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing,stateful \
  --max-examples "${CONTRACT_MAX_EXAMPLES:-100}" \
  --seed "${CONTRACT_SEED:-17}" \
  --workers 1 \
  --request-timeout 10 \
  --suppress-health-check too_slow \
  "$@") || status=$?
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "contract-test: the server died during the run" >&2
  cat "$work/server.err" >&2
  exit 1
fi
exit "$status"
