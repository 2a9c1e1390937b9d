#!/usr/bin/env bash
# Installs what is missing, builds, and runs Uketsuke on its embedded defaults: SQLite under
# ./data/, the built-in backend simulator, the demo institution. Prints where to open it.
# Configuration: uketsuke.toml or UKETSUKE_* variables (see README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh run
scripts/build-site.sh
exec target/release/uketsuke-server
