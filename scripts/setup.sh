#!/usr/bin/env bash
# Installs what Uketsuke needs, skipping everything already present at the right version, so a
# second run costs seconds. Usage: scripts/setup.sh run|test
#   run  — the wasm32 target, cargo-leptos, wasm-bindgen-cli, wasm-opt (binaryen from npm), brotli
#   test — all of that, plus Chromium, nginx, openssl, the e2e suite's npm packages, and
#          Schemathesis (PyPI, in a virtual environment under target/) for the API contract test
set -euo pipefail
cd "$(dirname "$0")/.."

purpose=${1:-run}
# The contract test of server/openapi.yaml (scripts/contract-test.sh).
SCHEMATHESIS_VERSION=4.32.5
# cargo-leptos 0.3.2 is the newest that builds with this machine's rustc (see ARCHITECTURE.md).
CARGO_LEPTOS_VERSION=0.3.2
# The CLI must equal the wasm-bindgen crate in Cargo.lock exactly.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

say() { printf 'setup: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  say "installing Debian packages: $*"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# System packages.
missing=()
command -v brotli >/dev/null 2>&1 || missing+=(brotli)
if [ "$purpose" = test ]; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
  # A Japanese font, so screenshots and contrast checks see real glyphs.
  fc-list :lang=ja 2>/dev/null | grep -q . || missing+=(fonts-ipafont-gothic)
  # A face with the registry's 外字 outside the BMP (𠮷 U+20BB7) and variation sequences, as
  # clinics' laptops have (Yu Gothic, Hiragino): the console's name check looks for real glyphs.
  fc-list ':charset=20bb7' 2>/dev/null | grep -q . || missing+=(fonts-noto-cjk)
  # The desktop card helper (helper/): pcsc-lite to build and run it, its daemon and
  # vsmartcard's virtual reader for the tests, and Xvfb with Mesa's software OpenGL and
  # xdotool for its window's screenshots and keyboard test.
  [ -e /usr/include/PCSC/winscard.h ] || missing+=(libpcsclite-dev)
  [ -x /usr/sbin/pcscd ] || missing+=(pcscd)
  [ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || missing+=(vsmartcard-vpcd)
  command -v Xvfb >/dev/null 2>&1 || missing+=(xvfb)
  command -v xdotool >/dev/null 2>&1 || missing+=(xdotool)
  command -v xdg-mime >/dev/null 2>&1 || missing+=(xdg-utils)
  dpkg -s libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 >/dev/null 2>&1 \
    || missing+=(libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6)
  # The deployment tests: nginx in front of the server, throw-away certificates by openssl.
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  # Python with venv, for Schemathesis.
  command -v python3 >/dev/null 2>&1 || missing+=(python3)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
fi
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi

# Rust: the browser target.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

# cargo-leptos (about 11 minutes the first time) and the wasm-bindgen CLI at the crate's exact
# version, built side by side: each build has long single-threaded stretches (its largest crates,
# its link), which the other fills. The wasm-bindgen CLI's own lock file names a webpki-roots
# version that is not in the registry, so it installs without --locked.
installs=()
if [ "$(cargo leptos --version 2>/dev/null)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
  say "installing cargo-leptos $CARGO_LEPTOS_VERSION (takes a while, once)"
  cargo install cargo-leptos --locked --version "$CARGO_LEPTOS_VERSION" &
  installs+=($!)
fi
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force &
  installs+=($!)
fi
for pid in "${installs[@]}"; do
  wait "$pid" || { echo "setup: a cargo install failed (see above)" >&2; exit 1; }
done

# npm packages, reinstalled only when a lock file changes: the build tools (wasm-opt from
# binaryen; Debian's is too old for the WASM features current rustc emits), and for tests the
# e2e suite's packages.
npm_install() {
  local dir=$1 stamp="$1/node_modules/.lock-sha256" want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing npm packages in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}
npm_install tools
if [ "$purpose" = test ]; then npm_install e2e; fi

# Schemathesis, pinned, in its own virtual environment (nothing installed system-wide).
if [ "$purpose" = test ]; then
  st_venv=target/schemathesis
  if [ "$("$st_venv/bin/st" --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
    say "installing Schemathesis $SCHEMATHESIS_VERSION (PyPI) into $st_venv"
    rm -rf "$st_venv"
    python3 -m venv "$st_venv"
    "$st_venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
  fi
fi
say "ready ($purpose)"
