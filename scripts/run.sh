#!/usr/bin/env bash
# Installs what is missing, builds, and runs Uketsuke on its embedded defaults: SQLite under
# ./data/, the built-in backend simulator, the demo institution. Prints where to open it.
# Configuration: uketsuke.toml or UKETSUKE_* variables (see README.md). The server has no
# default mode; this script chooses demo (loopback only) unless UKETSUKE_MODE or the
# configuration file sets one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
scripts/build-site.sh
config_file=${UKETSUKE_CONFIG:-uketsuke.toml}
if [ -z "${UKETSUKE_MODE:-}" ] &&
  ! { [ -f "$config_file" ] && grep -Eq '^[[:space:]]*mode[[:space:]]*=' "$config_file"; }; then
  export UKETSUKE_MODE=demo
fi
# A demo start creates its database; a production first start needs --create (pass it here).
exec target/release/uketsuke-server "$@"
