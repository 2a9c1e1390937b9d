# Sourced by the measuring scripts: starts the release server on a free loopback port with a
# throw-away SQLite database, as e2e/tests/harness.mjs does, and stops it when the script exits.
# After `start_demo_server NAME`: $base is the server's address, $link the demo link of NAME
# (e.g. separate_route), $work a temporary folder removed at exit.

start_demo_server() {
  local demo=$1
  [ -x target/release/uketsuke-server ] || { echo "build first: scripts/build-site.sh" >&2; exit 1; }
  work=$(mktemp -d)
  demo_server_pid=
  trap stop_demo_server EXIT
  env -i PATH="$PATH" \
    UKETSUKE_LISTEN=127.0.0.1:0 \
    UKETSUKE_MODE=demo \
    UKETSUKE_DATABASE_URL="sqlite://$work/demo.db" \
    UKETSUKE_SITE_ROOT="$PWD/target/site" \
    UKETSUKE_LOG=warn \
    target/release/uketsuke-server > "$work/out" 2>&1 &
  demo_server_pid=$!
  for _ in $(seq 300); do
    grep -q "Open the demo landing page: " "$work/out" 2>/dev/null && break
    kill -0 "$demo_server_pid" 2>/dev/null || break
    sleep 0.1
  done
  base=$(sed -n 's/.*running at \(http:\/\/[^[:space:]]*\).*/\1/p' "$work/out" | head -n1)
  link=$(sed -n "s/.*demo $demo[[:space:]]\+[^[:space:]]*\/r\/\([0-9a-z]\+\).*/\1/p" "$work/out" | head -n1)
  if [ -z "$base" ] || [ -z "$link" ]; then
    echo "server did not start (or printed no '$demo' link):" >&2; cat "$work/out" >&2; exit 1
  fi
  # Load and measurements go to this machine only.
  case "$base" in http://127.0.0.1:*|http://localhost:*|http://\[::1\]:*) ;; *)
    echo "refusing a non-loopback address: $base" >&2; exit 1;; esac
}

stop_demo_server() {
  if [ -n "${demo_server_pid:-}" ]; then
    kill "$demo_server_pid" 2>/dev/null || true
    wait "$demo_server_pid" 2>/dev/null || true
  fi
  rm -rf "${work:-}"
}
